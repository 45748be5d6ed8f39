"""The audit log: who changed what, when."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sdi.registry import permissions
from sdi.registry.models import AuditEntry, User

__all__ = ["list_agency_audit", "list_audit", "record"]

_INSERT = """
INSERT INTO sdi.audit_log (user_id, actor, action, object_type, object_id, details)
VALUES (%s, %s, %s, %s, %s, %s)
"""
_LIST = """
SELECT * FROM sdi.audit_log
WHERE (%(object_type)s::text IS NULL OR object_type = %(object_type)s)
  AND (%(object_id)s::text IS NULL OR object_id = %(object_id)s)
ORDER BY id DESC LIMIT %(limit)s
"""
# An agency's entries: done by its people, or about its users, layers, keys or
# itself (platform admins' changes to the agency's things included).
_LIST_AGENCY = """
SELECT a.* FROM sdi.audit_log a
WHERE a.user_id IN (SELECT id FROM sdi.users WHERE agency_id = %(agency_id)s)
   OR (a.object_type = 'user' AND a.object_id IN (
        SELECT email FROM sdi.users WHERE agency_id = %(agency_id)s))
   OR (a.object_type = 'layer' AND a.object_id IN (
        SELECT slug FROM sdi.layers WHERE agency_id = %(agency_id)s))
   OR (a.object_type = 'api_key' AND a.object_id IN (
        SELECT id::text FROM sdi.api_keys WHERE agency_id = %(agency_id)s))
   OR (a.object_type = 'agency' AND a.object_id = (
        SELECT code FROM sdi.agencies WHERE id = %(agency_id)s))
ORDER BY a.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
_LIST_ALL = "SELECT * FROM sdi.audit_log ORDER BY id DESC LIMIT %s OFFSET %s"


def record(
    conn: Connection[Any],
    action: str,
    object_type: str,
    object_id: str | int,
    *,
    actor: str = "cli",
    user_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit entry in the caller's transaction."""
    conn.execute(
        _INSERT,
        (user_id, actor, action, object_type, str(object_id), Jsonb(details or {})),
    )


def list_audit(
    conn: Connection[Any],
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest entries first, optionally for one object."""
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(
            _LIST, {"object_type": object_type, "object_id": object_id, "limit": limit}
        )
        return cur.fetchall()


def list_agency_audit(
    conn: Connection[Any],
    by: User,
    agency_id: int | None,
    *,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """Newest first: one agency's entries, or (``agency_id`` None) everyone's.

    ``by`` needs ``VIEW_AUDIT`` on the agency (everyone's: platform admins).
    """
    permissions.require(by, permissions.Action.VIEW_AUDIT, agency_id=agency_id)
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        if agency_id is None:
            return cur.execute(_LIST_ALL, (limit, offset)).fetchall()
        params = {"agency_id": agency_id, "limit": limit, "offset": offset}
        return cur.execute(_LIST_AGENCY, params).fetchall()
