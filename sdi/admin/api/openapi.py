"""``/admin/api/openapi.json``: the OpenAPI 3.0 document of the admin JSON API.

Built on each request from :data:`sdi.admin.api.ENDPOINTS`, which every
``@api_route`` adds to, so the document lists exactly the registered routes.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, jsonify, request

from sdi.admin.api import ENDPOINTS, Endpoint, api_route

__all__ = ["ERROR_SCHEMA", "build_document", "openapi_path"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "NotFound"},
                "message": {"type": "string"},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_STANDARD = {
    400: "Bad input; the message says what to fix.",
    401: "Missing, unknown, expired or revoked token.",
    403: "Your role does not allow this.",
    404: "Not found (or owned by another agency).",
    409: "Conflicts with the current state.",
}
_RULE_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``/keys/<int:key_id>`` -> ``/keys/{key_id}``."""
    return _RULE_PARAM.sub(lambda m: "{" + m["name"] + "}", rule)


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [
        {
            "name": m["name"],
            "in": "path",
            "required": True,
            "schema": {"type": _CONVERTER_TYPES.get(m["conv"] or "", "string")},
        }
        for m in _RULE_PARAM.finditer(rule)
    ]


def _response(status: int, spec: str | tuple[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        if status >= 400:
            return {
                "description": spec,
                "content": {"application/json": {"schema": _ERROR_REF}},
            }
        return {"description": spec}
    description, schema = spec
    return {
        "description": description,
        "content": {"application/json": {"schema": dict(schema)}},
    }


def _operation(ep: Endpoint, method: str) -> dict[str, Any]:
    responses: dict[int, str | tuple[str, Any]] = dict(ep.responses)
    if ep.request_schema is not None or ep.request_body is not None:
        responses.setdefault(400, _STANDARD[400])
    if ep.auth:
        responses.setdefault(401, _STANDARD[401])
    op: dict[str, Any] = {
        "operationId": f"{ep.endpoint}_{method.lower()}"
        if len(ep.methods) > 1
        else ep.endpoint,
        "summary": ep.summary,
        "tags": [ep.tag],
        "responses": {
            str(status): _response(status, spec)
            for status, spec in sorted(responses.items())
        },
    }
    if ep.description:
        op["description"] = ep.description
    parameters = _path_parameters(ep.rule) + [dict(p) for p in ep.parameters]
    if parameters:
        op["parameters"] = parameters
    if ep.request_body is not None:
        op["requestBody"] = dict(ep.request_body)
    elif ep.request_schema is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(ep.request_schema)}},
        }
    op["security"] = [{"bearerAuth": []}] if ep.auth else []
    return op


def build_document(server_url: str = "/admin/api") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for every endpoint in ``ENDPOINTS``."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        item = paths.setdefault(openapi_path(ep.rule), {})
        for method in ep.methods:
            if method in ("HEAD", "OPTIONS"):
                continue
            item[method.lower()] = _operation(ep, method)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sdi admin API",
            "version": "1",
            "description": (
                "Manage agencies, users, API keys and layers from scripts: the "
                "same actions and permissions as the admin pages. Authenticate "
                "with a personal token: 'Authorization: Bearer <token>'. Errors "
                'are {"error": {"code": ..., "message": ...}}.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


@api_route(
    "/openapi.json",
    summary="This OpenAPI document",
    auth=False,
    tag="meta",
    responses={200: ("OpenAPI 3.0 document", {"type": "object"})},
)
def openapi_document() -> Response:
    """The OpenAPI document of the admin JSON API (no token needed)."""
    return jsonify(build_document(f"{request.script_root}/api"))
