"""JSON endpoint for taking a version down (platform admins).

``POST /admin/api/layers/{slug}/versions/{n}/withdraw`` with
``{"reason": "..."}``: the same :func:`sdi.publish.actions.withdraw_version`
as the admin page and ``sdi layers withdraw``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from sdi.admin.api import api_route, connection, current_user, json_body
from sdi.admin.layer_access import load_version, settings
from sdi.publish.actions import withdraw_version
from sdi.registry.permissions import Action
from sdi.registry.withdrawal import MAX_REASON

__all__: list[str] = []

WITHDRAW_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
    },
}
WITHDRAWAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "layer": {"type": "string"},
        "version": {"type": "integer"},
        "withdrawn_at": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"},
        "rows_deleted": {"type": "integer"},
        "rows_reopened": {"type": "integer"},
        "carried_forward": {
            "type": "object",
            "nullable": True,
            "description": "Features the version added or changed that the "
            "next version holds unchanged: kept, as that version's data "
            "(withdraw it too if it holds the same bad data).",
            "properties": {
                "version": {"type": "integer"},
                "features": {"type": "integer"},
            },
        },
        "published_before": {"type": "integer", "nullable": True},
        "published_after": {"type": "integer", "nullable": True},
    },
}


@api_route(
    "/layers/<slug>/versions/<int:number>/withdraw",
    ["POST"],
    summary="Withdraw a version published in error (platform admins)",
    request_schema=WITHDRAW_REQUEST,
    responses={
        200: ("What was done", WITHDRAWAL_SCHEMA),
        403: "Only platform admins withdraw versions.",
        404: "No such layer or version.",
        410: "The version was withdrawn already.",
    },
)
def withdraw(slug: str, number: int) -> Response:
    """Delete the version's features (or raster file) and serve 410 Gone with
    the reason for it from now on; if it was published, the layer falls back
    to the newest earlier version. Recorded in the audit log."""
    user = current_user()
    data = json_body(WITHDRAW_REQUEST)
    with connection() as conn:
        load_version(conn, user, slug, number, Action.WITHDRAW_VERSION)
        done = withdraw_version(
            conn, settings(), slug, number, str(data["reason"]), by=user
        )
    return jsonify(done.to_json())
