"""Server-side sessions of the admin app, shared by every worker through PostgreSQL.

A session is a row of ``sdi.sessions``; the browser holds only its random id
(the row keeps the SHA-256). Each request checks and touches the row in one
statement (:func:`resume`), so ending a session (:func:`end`), or every session
of a user (:func:`end_all`: sign-out, password change or reset, role
change, deactivation) takes effect on the next request in every worker, and a
copied or replayed cookie opens nothing once its row is gone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from sdi.registry.models import User

__all__ = [
    "ABSOLUTE",
    "IDLE",
    "Session",
    "create",
    "end",
    "end_all",
    "list_sessions",
    "resume",
]

#: A session ends this long after sign-in, however active.
ABSOLUTE = timedelta(hours=8)
#: A session ends after this long without a request.
IDLE = timedelta(minutes=30)

_INSERT = """
INSERT INTO sdi.sessions (id_hash, user_id, user_agent, address)
VALUES (%s, %s, %s, %s)
"""
# One indexed statement per request: the session is alive, its user active;
# touch it and return the user.
_RESUME = """
UPDATE sdi.sessions s SET seen_at = now()
FROM sdi.users u
WHERE s.id_hash = %(id)s AND u.id = s.user_id AND u.active
  AND s.seen_at > now() - %(idle)s AND s.created_at > now() - %(absolute)s
RETURNING u.*
"""
_DELETE = "DELETE FROM sdi.sessions WHERE id_hash = %s"
_DELETE_USER = "DELETE FROM sdi.sessions WHERE user_id = %s"
_DELETE_OLD = "DELETE FROM sdi.sessions WHERE created_at < now() - %s"
_LIST = """
SELECT created_at, seen_at, user_agent, address, id_hash = %s AS current
FROM sdi.sessions
WHERE user_id = %s AND seen_at > now() - %s AND created_at > now() - %s
ORDER BY seen_at DESC
"""


@dataclass(frozen=True)
class Session:
    """A live session as its user sees it (never its id)."""

    created_at: datetime
    seen_at: datetime
    user_agent: str
    address: str
    current: bool


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create(
    conn: Connection[Any], user: User, *, user_agent: str = "", address: str = ""
) -> str:
    """Start a session for ``user``; returns its id (for the cookie only).

    Also removes sessions past :data:`ABSOLUTE`, so the table stays small.
    """
    session_id = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(_DELETE_OLD, (ABSOLUTE,))
        conn.execute(
            _INSERT, (_hash(session_id), user.id, user_agent[:300], address[:100])
        )
    return session_id


def resume(conn: Connection[Any], session_id: str) -> User | None:
    """The active user of a live session, touching it; None if ended or expired."""
    if not session_id or len(session_id) > 100:
        return None
    params = {"id": _hash(session_id), "idle": IDLE, "absolute": ABSOLUTE}
    with conn.cursor(row_factory=class_row(User)) as cur:
        user = cur.execute(_RESUME, params).fetchone()
    if user is None:  # ended, expired or its user deactivated: forget it
        conn.execute(_DELETE, (_hash(session_id),))
    return user


def end(conn: Connection[Any], session_id: str) -> None:
    """End one session (sign-out)."""
    conn.execute(_DELETE, (_hash(session_id),))


def end_all(conn: Connection[Any], user_id: int) -> int:
    """End every session of a user; how many there were."""
    return conn.execute(_DELETE_USER, (user_id,)).rowcount


def list_sessions(
    conn: Connection[Any], user: User, current: str | None = None
) -> list[Session]:
    """``user``'s live sessions, most recently used first; ``current`` is marked."""
    marker = _hash(current) if current else ""
    with conn.cursor(row_factory=class_row(Session)) as cur:
        return cur.execute(_LIST, (marker, user.id, IDLE, ABSOLUTE)).fetchall()
