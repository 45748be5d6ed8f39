"""JSON endpoints for accounts: agencies, users, licences, keys, audit.

Each calls the same registry function as the matching admin page; the registry
checks permissions with ``sdi.registry.permissions``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from sdi import registry
from sdi.admin.api import (
    api_route,
    connection,
    current_user,
    dump,
    json_body,
    parse_datetime,
    query_int,
)
from sdi.errors import BadInputError
from sdi.registry import apikeys, audit, users
from sdi.registry.models import ROLES, ApiKey

__all__ = [
    "AGENCY_SCHEMA",
    "KEY_SCHEMA",
    "LICENCE_SCHEMA",
    "USER_SCHEMA",
]

# ------------------------------------------------------------------ schemas

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_STATUS = {"type": "string", "enum": ["active", "expired", "revoked"]}


def _list_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "agency_id": {"type": "integer", "nullable": True},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": list(ROLES)},
        "active": {"type": "boolean"},
        "created_at": _TIME,
    },
}
AGENCY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "code": {"type": "string"},
        "name_en": {"type": "string"},
        "name_zh": {"type": "string"},
        "contact_email": {"type": "string"},
        "created_at": _TIME,
    },
}
LICENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "code": {"type": "string"},
        "name_en": {"type": "string"},
        "name_zh": {"type": "string"},
        "url": {"type": "string"},
        "attribution_en": {"type": "string"},
        "attribution_zh": {"type": "string"},
        "restricted": {"type": "boolean"},
    },
}
KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "agency_id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "created_by": {"type": "integer", "nullable": True},
        "created_at": _TIME,
        "expires_at": _NULLABLE_TIME,
        "revoked_at": _NULLABLE_TIME,
        "status": _STATUS,
        "layers": {"type": "array", "items": {"type": "string"}},
        "key": {
            "type": "string",
            "description": "The key itself: only in the answer that created it.",
        },
    },
}
AUDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": _TIME,
        "user_id": {"type": "integer", "nullable": True},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "object_type": {"type": "string"},
        "object_id": {"type": "string"},
        "details": {"type": "object"},
    },
}

_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_TEXT = {"type": "string", "maxLength": 300}
_LAYER_SLUGS = {"type": "array", "items": {"type": "string"}, "maxItems": 1000}

AGENCY_FIELDS = {
    "name_en": {"type": "string", "minLength": 1, "maxLength": 200},
    "name_zh": {"type": "string", "maxLength": 200},
    "contact_email": {"type": "string", "maxLength": 254},
}
AGENCY_CREATE = {
    "type": "object",
    "required": ["code", "name_en"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "minLength": 2, "maxLength": 16},
        **AGENCY_FIELDS,
    },
}
AGENCY_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": AGENCY_FIELDS,
}
USER_CREATE = {
    "type": "object",
    "required": ["email", "password", "role"],
    "additionalProperties": False,
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "password": {"type": "string", "minLength": 10, "maxLength": 500},
        "role": {"type": "string", "enum": list(ROLES)},
        "agency": {
            "type": "string",
            "nullable": True,
            "description": "Agency code; defaults to your own. Ignored for "
            "platform admins.",
        },
        "name": {"type": "string", "maxLength": 200},
    },
}
USER_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "role": {"type": "string", "enum": list(ROLES)},
        "active": {"type": "boolean"},
    },
}
PASSWORD_SET = {
    "type": "object",
    "required": ["password"],
    "additionalProperties": False,
    "properties": {"password": {"type": "string", "minLength": 10, "maxLength": 500}},
}
LICENCE_FIELDS = {
    "name_en": {"type": "string", "minLength": 1, "maxLength": 300},
    "name_zh": _TEXT,
    "url": {"type": "string", "maxLength": 500},
    "attribution_en": _TEXT,
    "attribution_zh": _TEXT,
    "restricted": {"type": "boolean"},
}
LICENCE_CREATE = {
    "type": "object",
    "required": ["code", "name_en"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 50},
        **LICENCE_FIELDS,
    },
}
LICENCE_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": LICENCE_FIELDS,
}
KEY_CREATE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "layers": {**_LAYER_SLUGS, "description": "Slugs of your agency's layers."},
        "expires_at": _NULLABLE_TIME,
        "agency": {
            "type": "string",
            "description": "Agency code; defaults to your own (platform admins: "
            "required).",
        },
    },
}
KEY_LAYERS = {
    "type": "object",
    "required": ["layers"],
    "additionalProperties": False,
    "properties": {"layers": _LAYER_SLUGS},
}
_AGENCY_PARAM = {
    "name": "agency",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Agency code; defaults to your own (platform admins: every agency).",
}


def _created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def _key_json(conn: Any, record: ApiKey, /, **extra: Any) -> dict[str, Any]:
    layers = [layer.slug for layer in apikeys.key_layers(conn, record.id)]
    return dump(record, status=apikeys.key_status(record), layers=layers, **extra)


def _time(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    return parse_datetime(value, f"Field '{name}'") if value else None


# ------------------------------------------------------------------ agencies


@api_route(
    "/agencies",
    summary="Every agency",
    responses={200: ("Agencies by code", _list_of(AGENCY_SCHEMA))},
)
def list_agencies() -> Response:
    """Every agency (any signed-in user may read the list)."""
    with connection() as conn:
        return jsonify([dump(a) for a in registry.list_agencies(conn)])


@api_route(
    "/agencies",
    ["POST"],
    summary="Register an agency (platform admins)",
    request_schema=AGENCY_CREATE,
    responses={
        201: ("The agency", AGENCY_SCHEMA),
        403: "Only platform admins.",
        409: "The code is taken.",
    },
)
def create_agency() -> tuple[Response, int]:
    """Register a department with its short code and bilingual names."""
    data = json_body(AGENCY_CREATE)
    with connection() as conn:
        agency = registry.create_agency(
            conn,
            data["code"],
            data["name_en"],
            data.get("name_zh", ""),
            data.get("contact_email", ""),
            by=current_user(),
        )
    return _created(dump(agency))


@api_route(
    "/agencies/<code>",
    summary="One agency",
    responses={200: ("The agency", AGENCY_SCHEMA), 404: "No such agency."},
)
def get_agency(code: str) -> Response:
    """One agency by code."""
    with connection() as conn:
        return jsonify(dump(registry.get_agency(conn, code)))


@api_route(
    "/agencies/<code>",
    ["PATCH"],
    summary="Change an agency's names or contact (platform admins)",
    request_schema=AGENCY_UPDATE,
    responses={
        200: ("The agency", AGENCY_SCHEMA),
        403: "Only platform admins.",
        404: "No such agency.",
    },
)
def update_agency(code: str) -> Response:
    """Change the given fields; others keep their value."""
    data = json_body(AGENCY_UPDATE)
    with connection() as conn:
        before = registry.get_agency(conn, code)
        fields = {
            k: data.get(k, getattr(before, k))
            for k in ("name_en", "name_zh", "contact_email")
        }
        agency = registry.update_agency(conn, current_user(), code, **fields)
    return jsonify(dump(agency))


# ------------------------------------------------------------------ users


@api_route(
    "/users",
    summary="Users you manage",
    parameters=[_AGENCY_PARAM],
    responses={
        200: ("Users by agency and e-mail", _list_of(USER_SCHEMA)),
        403: "You do not manage these users.",
        404: "No such agency.",
    },
)
def list_users() -> Response:
    """An agency's users (agency admins: their own; platform admins: any or all)."""
    by = current_user()
    with connection() as conn:
        scope = users.agency_scope(conn, by, request.args.get("agency"))
        found = users.list_users(conn, by, agency_id=scope)
    return jsonify([dump(u) for u in found])


@api_route(
    "/users",
    ["POST"],
    summary="Create a user",
    request_schema=USER_CREATE,
    responses={
        201: ("The user", USER_SCHEMA),
        403: "You may not create this user.",
        404: "No such agency.",
        409: "The e-mail is taken.",
    },
)
def create_user() -> tuple[Response, int]:
    """Agency admins add editors and admins to their agency; platform admins anyone."""
    data = json_body(USER_CREATE)
    by = current_user()
    with connection() as conn:
        agency_code = data.get("agency")
        if agency_code is None and by.agency_id is not None:
            agency_code = users.get_agency_by_id(conn, by.agency_id).code
        user = users.register_user(
            conn,
            by,
            email=data["email"],
            password=data["password"],
            role=data["role"],
            agency_code=agency_code,
            name=data.get("name", ""),
        )
    return _created(dump(user))


@api_route(
    "/users/<int:user_id>",
    summary="One user you manage",
    responses={200: ("The user", USER_SCHEMA), 404: "No such user of yours."},
)
def get_user(user_id: int) -> Response:
    """A user you manage (another agency's users are not found)."""
    with connection() as conn:
        return jsonify(dump(users.get_managed_user(conn, current_user(), user_id)))


@api_route(
    "/users/<int:user_id>",
    ["PATCH"],
    summary="Change a user's name, role or active flag",
    request_schema=USER_UPDATE,
    responses={
        200: ("The user", USER_SCHEMA),
        403: "You may not give this role.",
        404: "No such user of yours.",
    },
)
def update_user(user_id: int) -> Response:
    """Set ``active`` false to deactivate: their sessions end and their tokens are
    revoked. A new role ends their sessions."""
    data = json_body(USER_UPDATE)
    with connection() as conn:
        user = users.update_user(conn, current_user(), user_id, **data)
    return jsonify(dump(user))


@api_route(
    "/users/<int:user_id>/password",
    ["POST"],
    summary="Reset a user's password",
    request_schema=PASSWORD_SET,
    responses={200: ("The user", USER_SCHEMA), 404: "No such user of yours."},
)
def reset_password(user_id: int) -> Response:
    """Set a new password for a user you manage (at least 10 characters and hard
    to guess; the answer says why one is refused). Ends the user's sessions and
    revokes their API tokens."""
    data = json_body(PASSWORD_SET)
    with connection() as conn:
        user = users.reset_password(conn, current_user(), user_id, data["password"])
    return jsonify(dump(user))


# ------------------------------------------------------------------ licences


@api_route(
    "/licences",
    summary="The licence list",
    responses={200: ("Licences", _list_of(LICENCE_SCHEMA))},
)
def list_licences() -> Response:
    """Every licence a layer may be published under."""
    with connection() as conn:
        return jsonify([dump(lic) for lic in registry.list_licences(conn)])


@api_route(
    "/licences",
    ["POST"],
    summary="Add a licence (platform admins)",
    request_schema=LICENCE_CREATE,
    responses={
        201: ("The licence", LICENCE_SCHEMA),
        403: "Only platform admins.",
        409: "The code is taken.",
    },
)
def create_licence() -> tuple[Response, int]:
    """Add a licence to the list."""
    data = json_body(LICENCE_CREATE)
    code = data.pop("code")
    with connection() as conn:
        licence = registry.create_licence(conn, current_user(), code, **data)
    return _created(dump(licence))


@api_route(
    "/licences/<code>",
    ["PATCH"],
    summary="Change a licence (platform admins)",
    request_schema=LICENCE_UPDATE,
    responses={
        200: ("The licence", LICENCE_SCHEMA),
        403: "Only platform admins.",
        404: "No such licence.",
    },
)
def update_licence(code: str) -> Response:
    """Change the given fields; licences are never deleted."""
    data = json_body(LICENCE_UPDATE)
    with connection() as conn:
        licence = registry.update_licence(conn, current_user(), code, **data)
    return jsonify(dump(licence))


# ------------------------------------------------------------------ API keys


@api_route(
    "/keys",
    summary="API keys of an agency",
    parameters=[_AGENCY_PARAM],
    responses={
        200: ("Keys, newest first", _list_of(KEY_SCHEMA)),
        403: "You do not manage this agency's keys.",
        404: "No such agency.",
    },
)
def list_keys() -> Response:
    """Keys with their status and layers (never the keys themselves)."""
    by = current_user()
    with connection() as conn:
        scope = users.agency_scope(conn, by, request.args.get("agency"))
        found = apikeys.list_keys(conn, by, scope)
        return jsonify([_key_json(conn, key) for key in found])


@api_route(
    "/keys",
    ["POST"],
    summary="Create an API key for restricted layers",
    request_schema=KEY_CREATE,
    responses={
        201: ("The key; 'key' is shown only this once", KEY_SCHEMA),
        403: "You do not manage this agency's keys.",
        404: "No such agency or layer.",
    },
)
def create_key() -> tuple[Response, int]:
    """A key opening the given layers of your agency, optionally expiring."""
    data = json_body(KEY_CREATE)
    by = current_user()
    with connection() as conn:
        scope = users.agency_scope(conn, by, data.get("agency"))
        if scope is None:
            raise BadInputError("Field 'agency' is required: which agency's key?")
        record, key = apikeys.create_key(
            conn,
            by,
            scope,
            data["name"],
            data.get("layers", []),
            expires_at=_time(data, "expires_at"),
        )
        return _created(_key_json(conn, record, key=key))


@api_route(
    "/keys/<int:key_id>",
    summary="One API key",
    responses={200: ("The key", KEY_SCHEMA), 404: "No such key of yours."},
)
def get_key(key_id: int) -> Response:
    """A key of your agency with its status and layers."""
    with connection() as conn:
        key = apikeys.get_key(conn, current_user(), key_id)
        return jsonify(_key_json(conn, key))


@api_route(
    "/keys/<int:key_id>/layers",
    ["PUT"],
    summary="Set the layers a key opens",
    request_schema=KEY_LAYERS,
    responses={200: ("The key", KEY_SCHEMA), 404: "No such key or layer."},
)
def set_key_layers(key_id: int) -> Response:
    """Replace the key's layers with the given ones (your agency's only)."""
    data = json_body(KEY_LAYERS)
    by = current_user()
    with connection() as conn:
        apikeys.set_key_layers(conn, by, key_id, data["layers"])
        return jsonify(_key_json(conn, apikeys.get_key(conn, by, key_id)))


@api_route(
    "/keys/<int:key_id>/revoke",
    ["POST"],
    summary="Revoke an API key",
    responses={200: ("The revoked key", KEY_SCHEMA), 404: "No such key of yours."},
)
def revoke_key(key_id: int) -> Response:
    """Revoke a key for good; revoking twice changes nothing."""
    with connection() as conn:
        key = apikeys.revoke_key(conn, current_user(), key_id)
        return jsonify(_key_json(conn, key))


# ------------------------------------------------------------------ audit


@api_route(
    "/audit",
    summary="Audit log entries, newest first",
    parameters=[
        _AGENCY_PARAM,
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ],
    responses={
        200: ("Entries", _list_of(AUDIT_SCHEMA)),
        403: "You may not read this agency's log.",
        404: "No such agency.",
    },
)
def list_audit() -> Response:
    """Your agency's entries (platform admins: any agency's or everyone's)."""
    limit = query_int("limit", 100, minimum=1, maximum=1000)
    offset = query_int("offset", 0)
    by = current_user()
    with connection() as conn:
        scope = users.agency_scope(conn, by, request.args.get("agency"))
        entries = audit.list_agency_audit(conn, by, scope, limit=limit, offset=offset)
    return jsonify([dump(e) for e in entries])
