"""The licence list."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, errors
from psycopg.rows import class_row

from sdi.errors import BadInputError, ConflictError, NotFoundError
from sdi.registry import audit, permissions
from sdi.registry.models import Licence, User
from sdi.registry.publication import bump_generation

__all__ = [
    "LICENCE_FIELDS",
    "create_licence",
    "get_licence",
    "get_licence_by_id",
    "list_licences",
    "update_licence",
]

_BY_CODE = "SELECT * FROM sdi.licences WHERE code = %s"
_BY_ID = "SELECT * FROM sdi.licences WHERE id = %s"
_ALL = "SELECT * FROM sdi.licences ORDER BY id"
_INSERT = """
INSERT INTO sdi.licences (code, name_en, name_zh, url, attribution_en,
    attribution_zh, restricted)
VALUES (%(code)s, %(name_en)s, %(name_zh)s, %(url)s, %(attribution_en)s,
    %(attribution_zh)s, %(restricted)s)
RETURNING *
"""
_UPDATE = """
UPDATE sdi.licences SET name_en = %(name_en)s, name_zh = %(name_zh)s, url = %(url)s,
    attribution_en = %(attribution_en)s, attribution_zh = %(attribution_zh)s,
    restricted = %(restricted)s
WHERE code = %(code)s RETURNING *
"""
#: What a licence says besides its code (all text but ``restricted``).
LICENCE_FIELDS = (
    "name_en",
    "name_zh",
    "url",
    "attribution_en",
    "attribution_zh",
    "restricted",
)


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


def _values(code: str, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(LICENCE_FIELDS)
    if unknown:
        raise BadInputError(f"Cannot set {', '.join(sorted(unknown))} of a licence.")
    out: dict[str, Any] = {"code": code}
    for name in LICENCE_FIELDS:
        value = values.get(name)
        if value is None:
            value = False if name == "restricted" else ""
        out[name] = bool(value) if name == "restricted" else str(value).strip()
    if not out["name_en"]:
        raise BadInputError("A licence needs an English name.")
    if out["url"] and not out["url"].startswith(("https://", "http://")):
        raise BadInputError("A licence URL starts with https:// or http://.")
    return out


def create_licence(
    conn: Connection[Any], by: User, code: str, **values: Any
) -> Licence:
    """Add a licence to the list (platform admins only); audited."""
    permissions.require(by, permissions.Action.MANAGE_LICENCES)
    params = _values(code.strip(), values)
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Licence)) as cur:
            licence = cur.execute(_INSERT, params).fetchone()
            assert licence is not None
            audit.record(
                conn,
                "create",
                "licence",
                licence.code,
                actor=by.email,
                user_id=by.id,
                details={"name_en": licence.name_en},
            )
    except errors.UniqueViolation as exc:
        raise ConflictError(f"A licence {code!r} already exists.") from exc
    except errors.CheckViolation as exc:
        raise BadInputError(
            f"Licence code {code!r} must be lower-case letters, digits, dots and "
            "hyphens, e.g. cc-by-4.0."
        ) from exc
    return licence


def update_licence(
    conn: Connection[Any], by: User, code: str, **values: Any
) -> Licence:
    """Change a licence's names, URL, attribution or restriction; audited.

    Omitted fields keep their value. Licences are never deleted: layers refer
    to them.
    """
    permissions.require(by, permissions.Action.MANAGE_LICENCES)
    with conn.transaction():
        before = get_licence(conn, code)
        merged = {name: getattr(before, name) for name in LICENCE_FIELDS} | values
        params = _values(code, merged)
        with conn.cursor(row_factory=class_row(Licence)) as cur:
            licence = cur.execute(_UPDATE, params).fetchone()
        assert licence is not None
        changes = {
            name: {"from": getattr(before, name), "to": getattr(licence, name)}
            for name in LICENCE_FIELDS
            if getattr(before, name) != getattr(licence, name)
        }
        if changes:
            audit.record(
                conn,
                "update",
                "licence",
                code,
                actor=by.email,
                user_id=by.id,
                details=changes,
            )
            # Collections show the licence's names and links: republish.
            bump_generation(conn)
    return licence
