"""Layer versions: immutable records of each upload."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sdi.errors import NotFoundError
from sdi.registry.models import Version

__all__ = ["get_version", "insert_version", "latest_version_number", "list_versions"]

_LIST = "SELECT * FROM sdi.layer_versions WHERE layer_id = %s ORDER BY number"
_GET = "SELECT * FROM sdi.layer_versions WHERE layer_id = %s AND number = %s"
_LATEST = "SELECT coalesce(max(number), 0) FROM sdi.layer_versions WHERE layer_id = %s"
_INSERT = """
INSERT INTO sdi.layer_versions (layer_id, number, created_by, source_filename,
    source_sha256, source_format, source_layer, source_crs, source_encoding,
    feature_count, geometry_type, extent, schema, diff, report, note)
VALUES (%(layer_id)s, %(number)s, %(created_by)s, %(source_filename)s,
    %(source_sha256)s, %(source_format)s, %(source_layer)s, %(source_crs)s,
    %(source_encoding)s, %(feature_count)s, %(geometry_type)s, %(extent)s,
    %(schema)s, %(diff)s, %(report)s, %(note)s)
RETURNING *
"""


def list_versions(conn: Connection[Any], layer_id: int) -> list[Version]:
    """Every version of a layer, oldest first."""
    with conn.cursor(row_factory=class_row(Version)) as cur:
        return cur.execute(_LIST, (layer_id,)).fetchall()


def get_version(conn: Connection[Any], layer_id: int, number: int) -> Version:
    """One version; NotFoundError if it does not exist."""
    with conn.cursor(row_factory=class_row(Version)) as cur:
        version = cur.execute(_GET, (layer_id, number)).fetchone()
    if version is None:
        raise NotFoundError(f"No version {number} of this layer.")
    return version


def latest_version_number(conn: Connection[Any], layer_id: int) -> int:
    """The highest version number, 0 when the layer has none."""
    row = conn.execute(_LATEST, (layer_id,)).fetchone()
    return int(row[0]) if row else 0


def insert_version(conn: Connection[Any], **values: Any) -> Version:
    """Record a version (called by ingestion, inside its transaction)."""
    params = dict(values)
    for key in ("schema", "diff", "report"):
        params[key] = Jsonb(params.get(key) or {})
    params.setdefault("note", "")
    params.setdefault("created_by", None)
    with conn.cursor(row_factory=class_row(Version)) as cur:
        version = cur.execute(_INSERT, params).fetchone()
    assert version is not None
    return version
