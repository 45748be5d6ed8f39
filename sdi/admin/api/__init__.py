"""The admin JSON API under ``/admin/api/``: the same actions as the pages, for scripts.

How to add endpoints (a module in this package, e.g. ``sdi/admin/api/layers.py``)::

    from sdi.admin.api import api_route, connection, current_user, dump, json_body

    CREATE = {"type": "object", "required": ["name"], "additionalProperties": False,
              "properties": {"name": {"type": "string", "minLength": 1}}}

    @api_route("/things", ["POST"], summary="Create a thing", request_schema=CREATE,
               responses={201: ("The new thing", THING_SCHEMA)})
    def create_thing() -> tuple[Response, int]:
        data = json_body(CREATE)           # 400 with a message on bad input
        with connection() as conn:          # autocommit, from the app's pool
            thing = registry.create_thing(conn, by=current_user(), **data)
        return jsonify(dump(thing)), 201

- Every module of this package is imported by :func:`register_api` (called by
  the app factory), so a new module's endpoints appear without editing this file.
- :func:`api_route` registers the Flask route on :data:`bp` *and* records it in
  :data:`ENDPOINTS`, from which ``sdi.admin.api.openapi`` builds
  ``/admin/api/openapi.json``. Routes are token-protected unless ``auth=False``.
- Authentication is ``Authorization: Bearer <token>`` only (personal tokens,
  ``sdi.registry.tokens``); session cookies are ignored, so the blueprint is
  exempt from CSRF. The acting registry ``User`` is ``flask.g.user``
  (:func:`current_user`).
- Errors: raise any ``sdi.errors.SdiError``; the app's one error handler
  (``sdi.admin.errors``) answers ``{"error": {"code": ..., "message": ...}}``
  with the error's status (401 for a missing or bad token).
- Permissions: call the registry functions that take the acting user (``by=``)
  and check ``sdi.registry.permissions``; never decide permissions here.
- Helpers: :func:`json_body` / :func:`validate` (400 with a message naming the
  field), :func:`query_int` for ``?limit=``-style parameters,
  :func:`parse_datetime`, :func:`dump` (dataclass -> JSON, no ``*_hash``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, current_app, g, request
from flask_wtf import CSRFProtect
from psycopg import Connection

from sdi.admin.db import pool
from sdi.admin.errors import UnauthorizedError
from sdi.errors import BadInputError
from sdi.registry.models import User
from sdi.registry.tokens import ApiToken, authenticate

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "api_route",
    "bp",
    "connection",
    "current_token",
    "current_user",
    "dump",
    "json_body",
    "parse_datetime",
    "query_int",
    "register_api",
    "token_required",
    "validate",
]

#: The JSON API blueprint; mounted in the admin app, so URLs are /admin/api/...
bp = Blueprint("api", __name__, url_prefix="/api")

F = TypeVar("F", bound=Callable[..., Any])

#: OpenAPI responses: status -> description, or (description, JSON schema).
Responses = Mapping[int, str | tuple[str, Mapping[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One documented route of the JSON API (see :func:`api_route`)."""

    rule: str  # Flask rule relative to the blueprint, e.g. /keys/<int:key_id>
    methods: tuple[str, ...]
    summary: str
    description: str
    tag: str
    endpoint: str  # Flask endpoint name without the "api." prefix
    auth: bool
    request_schema: Mapping[str, Any] | None
    request_body: Mapping[str, Any] | None
    parameters: tuple[Mapping[str, Any], ...]
    responses: Responses


#: Every endpoint registered with :func:`api_route`, in registration order.
ENDPOINTS: list[Endpoint] = []


def connection() -> AbstractContextManager[Connection[Any]]:
    """Lend an autocommit connection from the app's pool: ``with connection() as c``."""
    return pool(current_app).connection()


def current_user() -> User:
    """The registry user the request's token belongs to (inside token routes)."""
    user: User = g.user
    return user


def current_token() -> ApiToken:
    """The token the request was made with (inside token routes)."""
    token: ApiToken = g.token
    return token


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError(
            "Send a personal API token: 'Authorization: Bearer <token>' "
            "(create one under 'API tokens' in the admin app)."
        )
    return token


def token_required[V: Callable[..., Any]](view: V) -> V:
    """Refuse (401) unless ``Authorization: Bearer <token>`` names an active user.

    Puts the registry :class:`User` in ``flask.g.user`` and the token's record
    in ``flask.g.token``.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _bearer_token()
        with connection() as conn:
            found = authenticate(conn, token)
        if found is None:
            raise UnauthorizedError(
                "The API token is unknown, expired or revoked, or its user is "
                "deactivated."
            )
        g.token, g.user = found
        return view(*args, **kwargs)

    return cast(V, wrapper)


def api_route(
    rule: str,
    methods: Sequence[str] = ("GET",),
    *,
    summary: str,
    request_schema: Mapping[str, Any] | None = None,
    request_body: Mapping[str, Any] | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    responses: Responses | None = None,
    auth: bool = True,
    tag: str | None = None,
    endpoint: str | None = None,
) -> Callable[[F], F]:
    """Register a JSON API route on :data:`bp` and document it in OpenAPI.

    ``rule`` is relative to ``/admin/api`` (e.g. ``/keys/<int:key_id>``; path
    parameters are documented from the converters). ``request_schema`` is the
    JSON body's schema (OpenAPI 3.0 subset; validate with :func:`json_body`);
    ``request_body`` a full OpenAPI ``requestBody`` for other bodies (multipart
    uploads). ``parameters`` are OpenAPI query parameters. ``responses`` maps
    statuses to a description or ``(description, schema)``; 401 (``auth``) and
    400 (``request_schema``) are added. ``tag`` defaults to the module name.
    The view's docstring becomes the description.
    """

    def decorator(view: F) -> F:
        name = endpoint or view.__name__
        wrapped = token_required(view) if auth else view
        bp.add_url_rule(rule, endpoint=name, view_func=wrapped, methods=list(methods))
        ENDPOINTS.append(
            Endpoint(
                rule=rule,
                methods=tuple(m.upper() for m in methods),
                summary=summary,
                description=(view.__doc__ or "").strip(),
                tag=tag or view.__module__.rsplit(".", 1)[-1],
                endpoint=name,
                auth=auth,
                request_schema=request_schema,
                request_body=request_body,
                parameters=tuple(parameters),
                responses=responses or {200: "OK"},
            )
        )
        return wrapped

    return decorator


def register_api(app: Flask, csrf: CSRFProtect) -> None:
    """Import every endpoint module of this package, mount :data:`bp`, exempt CSRF.

    The API takes bearer tokens only (no cookies), so CSRF cannot apply.
    """
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    app.register_blueprint(bp)
    csrf.exempt(bp)


# ---------------------------------------------------------------- bodies


def json_body(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The request's JSON object, validated against ``schema`` (400 if not)."""
    data = request.get_json(silent=True)
    if data is None:
        raise BadInputError(
            "Send a JSON object as the body, with 'Content-Type: application/json'."
        )
    validate(schema, data)
    return cast(dict[str, Any], data)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_datetime(value: str, what: str = "date") -> datetime:
    """An ISO 8601 date-time with a time zone (``2026-12-31T00:00:00Z``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInputError(
            f"{what} must be an ISO 8601 date-time, e.g. 2026-12-31T00:00:00Z."
        ) from exc
    if parsed.tzinfo is None:
        raise BadInputError(f"{what} needs a time zone, e.g. 2026-12-31T00:00:00Z.")
    try:
        # 9999-12-31T23:59:59-12:00 is in the year 10000 in UTC, past what
        # PostgreSQL (and Python) can hold.
        parsed.astimezone(UTC)
    except OverflowError as exc:
        raise BadInputError(
            f"{what} must be no later than 9999-12-31T00:00:00Z."
        ) from exc
    return parsed


def query_int(
    name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer query parameter (``?limit=10``); BadInputError if malformed."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInputError(f"Parameter '{name}' must be a whole number.") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" to {maximum}" if maximum is not None else " or more"
        raise BadInputError(f"Parameter '{name}' must be {minimum}{upper}.")
    return value


def _label(path: str) -> str:
    return f"Field '{path}'" if path else "The body"


def validate(schema: Mapping[str, Any], value: Any, path: str = "") -> None:
    """Check ``value`` against an OpenAPI 3.0 schema subset; BadInputError if not.

    ``path`` names the value in messages (``layers[0]``; empty: the body).
    Supported: type, nullable, properties, required, additionalProperties
    (false), items, enum, minLength, maxLength, minimum, maximum, minItems,
    maxItems, uniqueItems, format (date-time, email).
    """
    where = _label(path)
    if value is None:
        if schema.get("nullable"):
            return
        raise BadInputError(f"{where} must not be null.")
    kind = schema.get("type")
    if kind and not _TYPES[kind](value):
        article = "an" if kind[0] in "aeiou" else "a"
        raise BadInputError(f"{where} must be {article} {kind}.")
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(str(o) for o in schema["enum"])
        raise BadInputError(f"{where} must be one of: {options}.")
    if isinstance(value, str):
        _validate_string(schema, value, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise BadInputError(f"{where} must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            raise BadInputError(f"{where} must be at most {schema['maximum']}.")
    elif isinstance(value, list):
        _validate_array(schema, value, path)
    elif isinstance(value, dict):
        _validate_object(schema, value, path)


def _validate_string(schema: Mapping[str, Any], value: str, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        if schema.get("minLength") == 1:
            raise BadInputError(f"{where} must not be empty.")
        raise BadInputError(f"{where} needs at least {schema['minLength']} characters.")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise BadInputError(f"{where} takes at most {schema['maxLength']} characters.")
    fmt = schema.get("format")
    if fmt == "date-time":
        parse_datetime(value, where)
    elif fmt == "email" and not _EMAIL.match(value):
        raise BadInputError(f"{where} must be an e-mail address.")


def _validate_array(schema: Mapping[str, Any], value: list[Any], path: str) -> None:
    where = _label(path)
    if len(value) < schema.get("minItems", 0):
        raise BadInputError(f"{where} needs at least {schema['minItems']} items.")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise BadInputError(f"{where} takes at most {schema['maxItems']} items.")
    if "items" in schema:
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{path}[{i}]")
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        raise BadInputError(f"{where} must not repeat items.")


def _validate_object(
    schema: Mapping[str, Any], value: dict[str, Any], path: str
) -> None:
    props: Mapping[str, Any] = schema.get("properties", {})
    prefix = f"{path}." if path else ""
    for name in schema.get("required", ()):
        if name not in value:
            raise BadInputError(f"Field '{prefix}{name}' is required.")
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(props))
        if unknown:
            known = ", ".join(sorted(props)) or "none"
            raise BadInputError(
                f"Unknown field(s): {', '.join(unknown)} (accepted: {known})."
            )
    for name, item in value.items():
        if name in props:
            validate(props[name], item, f"{prefix}{name}")


# ---------------------------------------------------------------- responses

_SECRET_FIELDS = frozenset({"password_hash", "key_hash", "token_hash"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dump(value)
    return value


def dump(obj: Any, **extra: Any) -> dict[str, Any]:
    """A registry dataclass as a JSON-ready dict: ISO dates, no ``*_hash`` fields.

    ``extra`` keys are added (or override fields).
    """
    out = {
        f.name: _jsonable(getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if f.name not in _SECRET_FIELDS
    }
    out.update({k: _jsonable(v) for k, v in extra.items()})
    return out
