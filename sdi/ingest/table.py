"""DDL of versioned layer tables ``sdi_data.<slug>`` (layout: docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql

from sdi.errors import IngestError
from sdi.ingest.source import PG_TYPES, Field

__all__ = [
    "DATA_SCHEMA",
    "create_indexes",
    "create_layer_table",
    "existing_columns",
    "reconcile_columns",
    "table_id",
]

DATA_SCHEMA = "sdi_data"
_MAX_IDENTIFIER_BYTES = 63
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def table_id(slug: str) -> sql.Identifier:
    """The qualified identifier of a layer's table."""
    return sql.Identifier(DATA_SCHEMA, slug)


def existing_columns(conn: Connection[Any], slug: str) -> dict[str, str] | None:
    """Attribute columns of the layer table and their types; None if no table."""
    qualified = sql.Identifier(DATA_SCHEMA, slug).as_string(conn)
    rows = conn.execute(_COLUMNS, (qualified,)).fetchall()
    if not rows:
        return None
    return {name: typ for name, typ in rows if not name.startswith("_sdi_")}


def create_layer_table(conn: Connection[Any], slug: str, srid: int) -> None:
    """Create the empty versioned table (indexes come after the first load)."""
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} ("
            " _sdi_fid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " _sdi_key text NOT NULL,"
            " _sdi_hash uuid NOT NULL,"
            " _sdi_from integer NOT NULL,"
            " _sdi_to integer,"
            " _sdi_repaired boolean NOT NULL DEFAULT false,"
            " _sdi_geom geometry(Geometry, {}))"
        ).format(table_id(slug), sql.Literal(srid))
    )


def create_indexes(conn: Connection[Any], slug: str) -> None:
    """Spatial index, the unique key of current rows, the version-range index."""
    table = table_id(slug)
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} USING gist (_sdi_geom)").format(
            sql.Identifier(f"{slug}_geom_idx"), table
        )
    )
    conn.execute(
        sql.SQL("CREATE UNIQUE INDEX {} ON {} (_sdi_key) WHERE _sdi_to IS NULL").format(
            sql.Identifier(f"{slug}_current_key_idx"), table
        )
    )
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} (_sdi_from, _sdi_to)").format(
            sql.Identifier(f"{slug}_range_idx"), table
        )
    )


def _merged_type(old: str, new: str) -> str:
    if old == new:
        return old
    numeric = {"bigint", "double precision"}
    if old in numeric and new in numeric:
        return "double precision"
    return "text"


_MAX_COLUMNS = 1600  # PostgreSQL's limit per table, dropped columns included
_USED_COLUMNS = """
SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0
"""


def _check_column_budget(conn: Connection[Any], slug: str, new: list[Field]) -> None:
    """Refuse a file whose attributes would take the table over 1600 columns."""
    qualified = table_id(slug).as_string(conn)
    row = conn.execute(_USED_COLUMNS, (qualified,)).fetchone()
    used = int(row[0]) if row else 0
    if used + len(new) > _MAX_COLUMNS:
        raise IngestError(
            f"{len(new)} attributes of this file are new to the layer; with its "
            f"{used} existing columns that is over PostgreSQL's limit of "
            f"{_MAX_COLUMNS} columns per table. Drop attributes the layer does "
            "not need."
        )


def reconcile_columns(
    conn: Connection[Any], slug: str, fields: list[Field], existing: dict[str, str]
) -> list[Field]:
    """Add missing columns, widen conflicting ones; returns fields as stored.

    Earlier versions keep their rows: a column whose type changes is widened
    (integer to double precision, anything else to text) so old values survive.
    """
    _check_column_budget(conn, slug, [f for f in fields if f.name not in existing])
    stored: list[Field] = []
    for f in fields:
        if len(f.name.encode()) > _MAX_IDENTIFIER_BYTES:
            raise IngestError(
                f"Attribute name {f.name!r} is longer than PostgreSQL's 63 bytes; "
                "rename it in the file."
            )
        if f.pg_type not in PG_TYPES:
            raise IngestError(
                f"Unsupported attribute type {f.pg_type!r} for {f.name!r}."
            )
        column = sql.Identifier(f.name)
        old = existing.get(f.name)
        if old is None:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    table_id(slug), column, sql.SQL(f.pg_type)
                )
            )
            existing[f.name] = f.pg_type
            stored.append(f)
            continue
        target = _merged_type(old, f.pg_type)
        if target != old:
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{}").format(
                    table_id(slug), column, sql.SQL(target), column, sql.SQL(target)
                )
            )
            existing[f.name] = target
        stored.append(Field(f.name, target))
    return stored
