"""JSON endpoints for accounts: me, tokens, agencies, users, licences, keys, audit.

Each calls the same registry function as the matching admin page; the registry
checks permissions with ``sdi.registry.permissions``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from sdi.admin.api import api_route, current_user, dump

__all__: list[str] = []

USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "agency_id": {"type": "integer", "nullable": True},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "role": {
            "type": "string",
            "enum": ["platform_admin", "agency_admin", "agency_editor"],
        },
        "active": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


@api_route(
    "/me",
    summary="The user the token belongs to",
    responses={200: ("The signed-in user", USER_SCHEMA)},
)
def me() -> Response:
    """The account the bearer token acts as."""
    return jsonify(dump(current_user()))
