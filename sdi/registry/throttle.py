"""Sign-in throttling, shared by every worker process through PostgreSQL.

After :data:`MAX_PER_EMAIL` failed sign-ins for one e-mail (or
:data:`MAX_PER_IP` from one client address) within :data:`WINDOW`, that e-mail
(or address) is refused for :data:`LOCK` — even with the right password, so a
guesser learns nothing while locked. A successful sign-in clears the e-mail's
count. The per-address limit is higher because a department's staff often
share one public address.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, ClassVar

from psycopg import Connection

from sdi.errors import SdiError

__all__ = [
    "LOCK",
    "MAX_PER_EMAIL",
    "MAX_PER_IP",
    "WINDOW",
    "TooManyAttemptsError",
    "check",
    "clear",
    "record_failure",
]

MAX_PER_EMAIL = 5
MAX_PER_IP = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)

_LOCKED_FOR = """
SELECT extract(epoch FROM max(locked_until) - now()) FROM sdi.login_locks
WHERE subject = ANY(%s) AND locked_until > now()
"""
_INSERT_FAILURE = "INSERT INTO sdi.login_failures (email, ip) VALUES (%s, %s)"
_COUNT = """
SELECT count(*) FILTER (WHERE email = %(email)s),
       count(*) FILTER (WHERE ip = %(ip)s)
FROM sdi.login_failures
WHERE at > now() - %(window)s AND (email = %(email)s OR ip = %(ip)s)
"""
_LOCK = """
INSERT INTO sdi.login_locks (subject, locked_until) VALUES (%s, now() + %s)
ON CONFLICT (subject) DO UPDATE SET locked_until = excluded.locked_until
"""
_FORGET_OLD = "DELETE FROM sdi.login_failures WHERE at < now() - interval '1 day'"
_CLEAR_FAILURES = "DELETE FROM sdi.login_failures WHERE email = %s"
_CLEAR_LOCK = "DELETE FROM sdi.login_locks WHERE subject = %s"


class TooManyAttemptsError(SdiError):
    """Sign-in refused for a while after repeated failures."""

    status: ClassVar[int] = 429
    code: ClassVar[str] = "TooManyRequests"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            "Too many failed sign-ins. For your account's safety, signing in is "
            f"paused: try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        self.retry_after = retry_after


def _subjects(email: str, ip: str) -> list[str]:
    return [f"email:{email.strip().lower()}", f"ip:{ip}"]


def check(conn: Connection[Any], email: str, ip: str) -> None:
    """Raise :class:`TooManyAttemptsError` while ``email`` or ``ip`` is locked."""
    row = conn.execute(_LOCKED_FOR, (_subjects(email, ip),)).fetchone()
    if row is not None and row[0] is not None:
        raise TooManyAttemptsError(math.ceil(float(row[0])))


def record_failure(conn: Connection[Any], email: str, ip: str) -> bool:
    """Count a failed sign-in; True when it locked the e-mail or the address."""
    email = email.strip().lower()
    email_subject, ip_subject = _subjects(email, ip)
    with conn.transaction():
        conn.execute(_FORGET_OLD)
        conn.execute(_INSERT_FAILURE, (email, ip))
        row = conn.execute(
            _COUNT, {"email": email, "ip": ip, "window": WINDOW}
        ).fetchone()
        by_email, by_ip = (int(row[0]), int(row[1])) if row else (0, 0)
        locked = False
        if by_email >= MAX_PER_EMAIL:
            conn.execute(_LOCK, (email_subject, LOCK))
            locked = True
        if by_ip >= MAX_PER_IP:
            conn.execute(_LOCK, (ip_subject, LOCK))
            locked = True
    return locked


def clear(conn: Connection[Any], email: str) -> None:
    """Forget ``email``'s failures and lock (after a successful sign-in)."""
    email = email.strip().lower()
    with conn.transaction():
        conn.execute(_CLEAR_FAILURES, (email,))
        conn.execute(_CLEAR_LOCK, (f"email:{email}",))
