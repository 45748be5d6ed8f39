"""Personal API tokens: how scripts authenticate to the admin JSON API.

A token acts as the user who created it, with that user's permissions (while
the user stays active). The plaintext ``sdit_<prefix>_<secret>`` is returned
once by :func:`create_token`; only its SHA-256 is stored.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from sdi.errors import BadInputError, NotFoundError
from sdi.registry import audit
from sdi.registry.models import User
from sdi.registry.passwords import hash_api_key

__all__ = [
    "ApiToken",
    "authenticate_token",
    "create_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "sdit_"  # noqa: S105 - a public marker, not a secret

_INSERT = """
INSERT INTO sdi.api_tokens (user_id, name, prefix, token_hash, expires_at)
VALUES (%s, %s, %s, %s, %s) RETURNING *
"""
_LIST = "SELECT * FROM sdi.api_tokens WHERE user_id = %s ORDER BY id DESC"
_GET = "SELECT * FROM sdi.api_tokens WHERE id = %s AND user_id = %s"
_REVOKE = """
UPDATE sdi.api_tokens SET revoked_at = now()
WHERE id = %s AND revoked_at IS NULL RETURNING *
"""
_BY_PREFIX = "SELECT * FROM sdi.api_tokens WHERE prefix = %s"
_TOUCH = "UPDATE sdi.api_tokens SET last_used_at = now() WHERE id = %s"
_USER = "SELECT * FROM sdi.users WHERE id = %s"


@dataclass(frozen=True)
class ApiToken:
    """A user's bearer token for the admin JSON API (the hash, never the token)."""

    id: int
    user_id: int
    name: str
    prefix: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise BadInputError("A token needs a name of 1 to 100 characters.")
    return name


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise BadInputError("An expiry date needs a time zone.")
    if expires_at <= datetime.now(UTC):
        raise BadInputError("The expiry date must be in the future.")


def create_token(
    conn: Connection[Any],
    by: User,
    name: str,
    *,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``by`` itself; returns the record and the plaintext token.

    The plaintext is not stored anywhere: show it once.
    """
    name = _check_name(name)
    _check_expiry(expires_at)
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiToken)) as cur:
        record = cur.execute(
            _INSERT, (by.id, name, prefix, hash_api_key(token), expires_at)
        ).fetchone()
        assert record is not None
        audit.record(
            conn,
            "create",
            "api_token",
            record.id,
            actor=by.email,
            user_id=by.id,
            details={
                "name": name,
                "prefix": prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return record, token


def list_tokens(conn: Connection[Any], by: User) -> list[ApiToken]:
    """``by``'s own tokens, newest first."""
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        return cur.execute(_LIST, (by.id,)).fetchall()


def revoke_token(conn: Connection[Any], by: User, token_id: int) -> ApiToken:
    """Revoke one of ``by``'s own tokens (others' tokens are "not found")."""
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiToken)) as cur:
        token = cur.execute(_GET, (token_id, by.id)).fetchone()
        if token is None:
            raise NotFoundError(f"No token {token_id}.")
        revoked = cur.execute(_REVOKE, (token_id,)).fetchone()
        if revoked is None:  # already revoked: nothing changes
            return token
        audit.record(
            conn,
            "revoke",
            "api_token",
            token_id,
            actor=by.email,
            user_id=by.id,
            details={"name": token.name, "prefix": token.prefix},
        )
    return revoked


def authenticate_token(conn: Connection[Any], token: str) -> User | None:
    """The active user ``token`` belongs to, or None (unknown, expired, revoked).

    Records the token's ``last_used_at``.
    """
    parts = token.split("_")
    if len(parts) < 3 or not token.startswith(TOKEN_PREFIX):
        return None
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        record = cur.execute(_BY_PREFIX, (parts[1],)).fetchone()
    if record is None or not hmac.compare_digest(
        record.token_hash, hash_api_key(token)
    ):
        return None
    if record.status() != "active":
        return None
    with conn.cursor(row_factory=class_row(User)) as cur:
        user = cur.execute(_USER, (record.user_id,)).fetchone()
    if user is None or not user.active:
        return None
    conn.execute(_TOUCH, (record.id,))
    return user
