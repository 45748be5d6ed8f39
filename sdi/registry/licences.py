"""The licence list."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from sdi.errors import NotFoundError
from sdi.registry.models import Licence

__all__ = ["get_licence", "get_licence_by_id", "list_licences"]

_BY_CODE = "SELECT * FROM sdi.licences WHERE code = %s"
_BY_ID = "SELECT * FROM sdi.licences WHERE id = %s"
_ALL = "SELECT * FROM sdi.licences ORDER BY id"


def list_licences(conn: Connection[Any]) -> list[Licence]:
    """All licences."""
    with conn.cursor(row_factory=class_row(Licence)) as cur:
        return cur.execute(_ALL).fetchall()


def get_licence(conn: Connection[Any], code: str) -> Licence:
    """The licence with ``code``; NotFoundError listing the valid codes if none."""
    with conn.cursor(row_factory=class_row(Licence)) as cur:
        licence = cur.execute(_BY_CODE, (code,)).fetchone()
    if licence is None:
        codes = ", ".join(lic.code for lic in list_licences(conn))
        raise NotFoundError(f"No licence {code!r}; choose one of: {codes}.")
    return licence


def get_licence_by_id(conn: Connection[Any], licence_id: int) -> Licence:
    """The licence with primary key ``licence_id``."""
    with conn.cursor(row_factory=class_row(Licence)) as cur:
        licence = cur.execute(_BY_ID, (licence_id,)).fetchone()
    if licence is None:
        raise NotFoundError(f"No licence with id {licence_id}.")
    return licence
