"""JSON endpoints for the token's own account and personal API tokens.

A token created here is a child of the token that asked (it expires no later
and is revoked with it); administrators list and revoke the tokens of the
users they manage. Permissions are ``sdi.registry.tokens``'s.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from sdi.admin.api import (
    api_route,
    connection,
    current_token,
    current_user,
    dump,
    json_body,
    parse_datetime,
)
from sdi.admin.api.accounts import USER_SCHEMA
from sdi.registry import tokens
from sdi.registry.tokens import ApiToken

__all__ = ["TOKEN_SCHEMA"]

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}

TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "user_id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "created_at": _TIME,
        "expires_at": _NULLABLE_TIME,
        "revoked_at": _NULLABLE_TIME,
        "last_used_at": _NULLABLE_TIME,
        "parent_id": {
            "type": "integer",
            "nullable": True,
            "description": "The token this one was created with: it expires no "
            "later and is revoked with it.",
        },
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
        "token": {
            "type": "string",
            "description": "The token itself: only in the answer that created it.",
        },
    },
}
_TOKENS = {"type": "array", "items": TOKEN_SCHEMA}
TOKEN_CREATE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "expires_at": {
            **_NULLABLE_TIME,
            "description": "At most the expiry of the token making the request "
            "(its expiry when omitted).",
        },
    },
}


def _token_json(record: ApiToken, /, **extra: Any) -> dict[str, Any]:
    return dump(record, status=record.status(), **extra)


@api_route(
    "/me",
    summary="The user the token acts as",
    responses={200: ("The user", USER_SCHEMA)},
    tag="accounts",
)
def me() -> Response:
    """The account the bearer token belongs to."""
    return jsonify(dump(current_user()))


@api_route(
    "/tokens",
    summary="Your personal API tokens",
    responses={200: ("Your tokens, newest first", _TOKENS)},
    tag="accounts",
)
def list_tokens() -> Response:
    """Your own tokens (never the tokens themselves, which are not stored)."""
    with connection() as conn:
        found = tokens.list_tokens(conn, current_user())
    return jsonify([_token_json(t) for t in found])


@api_route(
    "/tokens",
    ["POST"],
    summary="Create a personal API token",
    request_schema=TOKEN_CREATE,
    responses={201: ("The token; 'token' is shown only this once", TOKEN_SCHEMA)},
    tag="accounts",
)
def create_token() -> tuple[Response, int]:
    """A new token acting as you; the answer holds the token, shown once.

    It never outlives the token that created it: its expiry is at most that
    token's, and revoking that token revokes this one.
    """
    data = json_body(TOKEN_CREATE)
    raw = data.get("expires_at")
    expires_at = parse_datetime(raw, "Field 'expires_at'") if raw else None
    with connection() as conn:
        record, token = tokens.create_token(
            conn,
            current_user(),
            data["name"],
            expires_at=expires_at,
            parent=current_token(),
        )
    return jsonify(_token_json(record, token=token)), 201


@api_route(
    "/tokens/<int:token_id>/revoke",
    ["POST"],
    summary="Revoke a token",
    responses={
        200: ("The revoked token", TOKEN_SCHEMA),
        404: "No such token of yours or of a user you manage.",
    },
    tag="accounts",
)
def revoke_token(token_id: int) -> Response:
    """Revoke one of your own tokens (it may be the one you are using) or a token
    of a user you manage; the tokens created with it are revoked too."""
    with connection() as conn:
        token = tokens.revoke_token(conn, current_user(), token_id)
    return jsonify(_token_json(token))


@api_route(
    "/users/<int:user_id>/tokens",
    summary="A user's API tokens",
    responses={
        200: ("Their tokens, newest first", _TOKENS),
        404: "No such user of yours.",
    },
    tag="accounts",
)
def list_user_tokens(user_id: int) -> Response:
    """The tokens of a user you manage (agency admins: their agency's people;
    platform admins: anyone)."""
    with connection() as conn:
        found = tokens.list_tokens(conn, current_user(), user_id=user_id)
    return jsonify([_token_json(t) for t in found])
