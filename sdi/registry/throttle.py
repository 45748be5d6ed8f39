"""Sign-in back-off, shared by every worker process through PostgreSQL.

Failed sign-ins are counted per e-mail-and-address pair and per address, never
per e-mail alone: a stranger's failures can slow down only the stranger's own
address, so nobody can lock an account (the platform admin's included) for its
owner, who still signs in from their own address. After :attr:`Rule.free`
failures a subject must wait :attr:`Rule.base`, doubling with each further
failure up to :attr:`Rule.cap`; while it waits every attempt is refused, even
with the right password, so a guesser learns nothing. Counts are forgotten
after :data:`RESET` without a failure; a successful sign-in forgets its pair.
The per-address rule is looser because a department's staff often share one
public address (behind a reverse proxy, set ``SDI_TRUSTED_PROXIES`` so the
address is the client's, not the proxy's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from psycopg import Connection

from sdi.errors import SdiError

__all__ = [
    "BY_ADDRESS",
    "BY_PAIR",
    "RESET",
    "Rule",
    "TooManyAttemptsError",
    "check",
    "clear",
    "record_failure",
]


@dataclass(frozen=True)
class Rule:
    """Back-off of one kind of subject: free failures, then a doubling delay."""

    free: int
    base: timedelta
    cap: timedelta

    def delay(self, failures: int) -> timedelta:
        """How long to wait after ``failures`` recent failures (zero at first)."""
        if failures < self.free:
            return timedelta(0)
        doublings = min(failures - self.free, 30)
        grown: timedelta = self.base * 2**doublings
        return min(grown, self.cap)


#: One e-mail from one address: 5 typos are free, then 30 s, 1 min, 2 min ...
BY_PAIR = Rule(free=5, base=timedelta(seconds=30), cap=timedelta(minutes=15))
#: One address, whatever the e-mail: 20 free, then 10 s, 20 s, 40 s ...
BY_ADDRESS = Rule(free=20, base=timedelta(seconds=10), cap=timedelta(minutes=15))
#: Failures are forgotten after this long without one.
RESET = timedelta(hours=1)

_WAIT = """
SELECT extract(epoch FROM max(blocked_until) - now()) FROM sdi.login_backoff
WHERE subject = ANY(%s) AND blocked_until > now()
"""
_FORGET_OLD = "DELETE FROM sdi.login_backoff WHERE last_failure_at < now() - %s"
_COUNT = """
INSERT INTO sdi.login_backoff AS b (subject, failures) VALUES (%(subject)s, 1)
ON CONFLICT (subject) DO UPDATE SET
    failures = CASE WHEN b.last_failure_at < now() - %(reset)s THEN 1
                    ELSE b.failures + 1 END,
    last_failure_at = now()
RETURNING failures
"""
_BLOCK = "UPDATE sdi.login_backoff SET blocked_until = now() + %s WHERE subject = %s"
_FORGET = "DELETE FROM sdi.login_backoff WHERE subject = %s"


class TooManyAttemptsError(SdiError):
    """Sign-in refused for a while after repeated failures."""

    status: ClassVar[int] = 429
    code: ClassVar[str] = "TooManyRequests"

    def __init__(self, retry_after: int) -> None:
        retry_after = max(1, retry_after)
        if retry_after < 120:
            wait = f"{retry_after} second{'s' if retry_after > 1 else ''}"
        else:
            wait = f"{math.ceil(retry_after / 60)} minutes"
        super().__init__(
            "Too many failed sign-ins from your address. For the account's "
            f"safety, signing in from here is paused: try again in {wait}."
        )
        self.retry_after = retry_after


def _pair(email: str, ip: str) -> str:
    return f"pair:{email.strip().lower()} {ip}"


def _address(ip: str) -> str:
    return f"ip:{ip}"


def check(conn: Connection[Any], email: str, ip: str) -> None:
    """Raise :class:`TooManyAttemptsError` while ``email`` from ``ip`` must wait."""
    row = conn.execute(_WAIT, ([_pair(email, ip), _address(ip)],)).fetchone()
    if row is not None and row[0] is not None:
        raise TooManyAttemptsError(math.ceil(float(row[0])))


def record_failure(conn: Connection[Any], email: str, ip: str) -> int:
    """Count a failed sign-in; the seconds to wait from now on (0: none)."""
    wait = timedelta(0)
    with conn.transaction():
        conn.execute(_FORGET_OLD, (RESET,))
        for subject, rule in ((_pair(email, ip), BY_PAIR), (_address(ip), BY_ADDRESS)):
            row = conn.execute(_COUNT, {"subject": subject, "reset": RESET}).fetchone()
            delay = rule.delay(int(row[0]) if row else 1)
            if delay:
                conn.execute(_BLOCK, (delay, subject))
                wait = max(wait, delay)
    return math.ceil(wait.total_seconds())


def clear(conn: Connection[Any], email: str, ip: str) -> None:
    """Forget ``email``'s failures from ``ip`` (after a successful sign-in).

    The address's own count stays: one person's success does not reset a
    guesser trying many e-mails from the same address.
    """
    conn.execute(_FORGET, (_pair(email, ip),))
