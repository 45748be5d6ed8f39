"""The audit log: who changed what, when."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sdi.registry.models import AuditEntry

__all__ = ["list_audit", "record"]

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
