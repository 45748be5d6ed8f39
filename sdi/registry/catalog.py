"""What PostgreSQL's catalog says about a layer table (read at publish time).

The registry records what each version held; the table's actual column types
and geometry SRID live in the catalog (a column may have been widened by a
later upload), so publication asks here once rather than every request.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

__all__ = ["DATA_SCHEMA", "table_columns", "table_srid"]

DATA_SCHEMA = "sdi_data"
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_SRID = """
SELECT srid FROM geometry_columns
WHERE f_table_schema = %s AND f_table_name = %s AND f_geometry_column = '_sdi_geom'
"""


def table_columns(conn: Connection[Any], slug: str) -> dict[str, str] | None:
    """Attribute columns of ``sdi_data.<slug>`` and their SQL types, in table order.

    The ``_sdi_*`` bookkeeping columns are left out; None when there is no table.
    """
    rows = conn.execute(_COLUMNS, (DATA_SCHEMA, slug)).fetchall()
    if not rows:
        return None
    return {str(name): str(typ) for name, typ in rows if not name.startswith("_sdi_")}


def table_srid(conn: Connection[Any], slug: str) -> int | None:
    """The SRID of the layer table's geometry column; None when unknown."""
    row = conn.execute(_SRID, (DATA_SCHEMA, slug)).fetchone()
    return int(row[0]) if row and row[0] else None
