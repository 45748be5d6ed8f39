"""Personal API tokens: how scripts authenticate to the admin JSON API.

A token acts as the user who created it, with that user's permissions (while
the user stays active). The plaintext ``sdit_<prefix>_<secret>`` is returned
once by :func:`create_token`; only its SHA-256 is stored.

Tokens die with the credentials that made them: changing or resetting the
password and deactivating the account revoke all of the user's tokens
(:func:`revoke_all`). A token created with a token (the JSON API) is its child:
it expires no later than its parent and is revoked with it, so no token
outlives the one that minted it. Users revoke their own tokens; whoever manages
a user (``permissions.can_manage_user``) may list and revoke theirs.
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
from sdi.registry import audit, permissions
from sdi.registry.models import User
from sdi.registry.passwords import hash_api_key

__all__ = [
    "ApiToken",
    "authenticate",
    "authenticate_token",
    "create_token",
    "list_tokens",
    "revoke_all",
    "revoke_token",
]

TOKEN_PREFIX = "sdit_"  # noqa: S105 - a public marker, not a secret

_INSERT = """
INSERT INTO sdi.api_tokens (user_id, name, prefix, token_hash, expires_at, parent_id)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING *
"""
_LIST = "SELECT * FROM sdi.api_tokens WHERE user_id = %s ORDER BY id DESC"
_GET = "SELECT * FROM sdi.api_tokens WHERE id = %s"
# The token and every token minted from it, at any depth.
_REVOKE = """
WITH RECURSIVE tree AS (
    SELECT id FROM sdi.api_tokens WHERE id = %s
    UNION ALL
    SELECT t.id FROM sdi.api_tokens t JOIN tree ON t.parent_id = tree.id
)
UPDATE sdi.api_tokens SET revoked_at = now()
WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL RETURNING id
"""
_REVOKE_USER = """
UPDATE sdi.api_tokens SET revoked_at = now()
WHERE user_id = %s AND revoked_at IS NULL RETURNING id
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
    parent_id: int | None = None

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
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``by`` itself; returns the record and the plaintext token.

    ``parent`` is the token the request was made with (JSON API): the new
    token expires no later than it (its expiry when none is asked) and is
    revoked with it. The plaintext is not stored anywhere: show it once.
    """
    name = _check_name(name)
    _check_expiry(expires_at)
    cap = parent.expires_at if parent is not None else None
    if cap is not None and (expires_at is None or expires_at > cap):
        expires_at = cap
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    parent_id = parent.id if parent is not None else None
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiToken)) as cur:
        record = cur.execute(
            _INSERT, (by.id, name, prefix, hash_api_key(token), expires_at, parent_id)
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
                "parent": parent_id,
            },
        )
    return record, token


def _owner(conn: Connection[Any], by: User, user_id: int) -> User:
    """The user whose tokens ``by`` asks for: themselves or someone they manage."""
    if user_id == by.id:
        return by
    with conn.cursor(row_factory=class_row(User)) as cur:
        owner = cur.execute(_USER, (user_id,)).fetchone()
    if owner is None or not permissions.can_manage_user(by, owner):
        raise NotFoundError(f"No user {user_id}.")
    return owner


def list_tokens(
    conn: Connection[Any], by: User, *, user_id: int | None = None
) -> list[ApiToken]:
    """``by``'s own tokens, or those of a user ``by`` manages; newest first."""
    owner = _owner(conn, by, by.id if user_id is None else user_id)
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        return cur.execute(_LIST, (owner.id,)).fetchall()


def revoke_token(conn: Connection[Any], by: User, token_id: int) -> ApiToken:
    """Revoke a token of ``by``'s own or of a user ``by`` manages, and its children.

    Tokens of anyone else are "not found". Revoking twice changes nothing.
    """
    not_found = f"No token {token_id}."
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiToken)) as cur:
        token = cur.execute(_GET, (token_id,)).fetchone()
        if token is None:
            raise NotFoundError(not_found)
        try:
            owner = _owner(conn, by, token.user_id)
        except NotFoundError:
            raise NotFoundError(not_found) from None
        revoked = conn.execute(_REVOKE, (token_id,)).fetchall()
        if not revoked:  # already revoked: nothing changes
            return token
        audit.record(
            conn,
            "revoke",
            "api_token",
            token_id,
            actor=by.email,
            user_id=by.id,
            details={
                "name": token.name,
                "prefix": token.prefix,
                "owner": owner.email,
                "children": len(revoked) - 1,
            },
        )
        fresh = cur.execute(_GET, (token_id,)).fetchone()
    assert fresh is not None
    return fresh


def revoke_all(
    conn: Connection[Any], user: User, *, reason: str, by: User | None = None
) -> int:
    """Revoke every token of ``user`` (their credentials changed); how many.

    ``reason`` (e.g. ``password_reset``) goes to the audit log, with ``by``
    (None: ``user`` themselves).
    """
    actor = by or user
    with conn.transaction():
        revoked = conn.execute(_REVOKE_USER, (user.id,)).fetchall()
        if revoked:
            audit.record(
                conn,
                "revoke_all",
                "api_token",
                user.email,
                actor=actor.email,
                user_id=actor.id,
                details={"reason": reason, "tokens": [row[0] for row in revoked]},
            )
    return len(revoked)


def authenticate(conn: Connection[Any], token: str) -> tuple[ApiToken, User] | None:
    """The token record and its active user, or None (unknown, expired, revoked).

    Records the token's ``last_used_at``.
    """
    parts = token.split("_")
    if len(parts) < 3 or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
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
    return record, user


def authenticate_token(conn: Connection[Any], token: str) -> User | None:
    """The active user ``token`` belongs to, or None; see :func:`authenticate`."""
    found = authenticate(conn, token)
    return found[1] if found else None
