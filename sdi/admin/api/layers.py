"""JSON endpoints for layers, versions, uploads and jobs.

The same functions as the layer pages: loading through
``sdi.admin.layer_access`` (the permission matrix; another agency's layer is
404), uploads through ``sdi.admin.uploads`` (streamed to the spool, queued as
a job), publication through ``sdi.publish.actions``, downloads and reviews
through ``sdi.export``. E.g.::

    curl -H "Authorization: Bearer $TOKEN" -F file=@roads.zip \\
        https://sdi.example/admin/api/layers/td_roads/versions
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from sdi import registry
from sdi.admin.api import api_route, connection, current_user, dump, json_body, validate
from sdi.admin.bodies import accepts_upload
from sdi.admin.jobs import job_summary
from sdi.admin.layer_access import (
    load_job,
    load_layer,
    load_version,
    owning_agency,
    settings,
    visible_layers,
)
from sdi.admin.layers import (
    FREQUENCIES,
    check_key_column,
    parse_keywords,
    preview_response,
    previous_of,
    send_version,
)
from sdi.admin.uploads import ACCEPTED_FORMATS, queue_upload
from sdi.errors import BadInputError
from sdi.export import FORMATS, layer_history, uploaders, version_summary
from sdi.jobs import Job, list_jobs
from sdi.publish.actions import publish_layer, rollback, unpublish_layer
from sdi.registry import users
from sdi.registry.models import Layer
from sdi.registry.permissions import Action

__all__: list[str] = []

_TEXT = {"type": "string", "maxLength": 300}
_LONG = {"type": "string", "maxLength": 5000}
_METADATA: dict[str, Any] = {
    "title_en": {"type": "string", "minLength": 1, "maxLength": 300},
    "title_zh": _TEXT,
    "abstract_en": _LONG,
    "abstract_zh": _LONG,
    "keywords": {"type": "array", "items": {"type": "string", "maxLength": 100}},
    "theme": {"type": "string", "maxLength": 100},
    "contact": _TEXT,
    "update_frequency": {"type": "string", "enum": [code for code, _ in FREQUENCIES]},
    "licence": {
        "type": "string",
        "description": "Licence code, e.g. hk-csdi (GET /licences lists them).",
    },
    "visibility": {"type": "string", "enum": ["public", "restricted"]},
    "key_column": {
        "type": "string",
        "nullable": True,
        "maxLength": 63,
        "description": "Attribute identifying a feature across versions; "
        "null: match by content.",
    },
}
LAYER_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["slug", "title_en", "licence"],
    "additionalProperties": False,
    "properties": {
        "slug": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "description": "Layer id: lower-case letters, digits and _, e.g. "
            "landsd_buildings.",
        },
        "agency": {
            "type": "string",
            "description": "Owning agency's code (platform admins must give it).",
        },
        **_METADATA,
    },
}
LAYER_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": _METADATA,
}
VERSION_CHOICE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"version": {"type": "integer", "minimum": 1}},
}
LAYER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "slug": {"type": "string"},
        "agency": {"type": "string"},
        "title_en": {"type": "string"},
        "title_zh": {"type": "string"},
        "abstract_en": {"type": "string"},
        "abstract_zh": {"type": "string"},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "theme": {"type": "string"},
        "contact": {"type": "string"},
        "update_frequency": {"type": "string"},
        "licence": {"type": "string"},
        "visibility": {"type": "string", "enum": ["public", "restricted"]},
        "key_column": {"type": "string", "nullable": True},
        "published_version": {"type": "integer", "nullable": True},
        "latest_version": {"type": "integer", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "links": {"type": "object"},
    },
}
VERSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "layer": {"type": "string"},
        "number": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "uploaded_by": {"type": "string", "nullable": True},
        "published": {"type": "boolean"},
        "source": {"type": "object"},
        "feature_count": {"type": "integer"},
        "geometry_type": {"type": "string"},
        "extent": {"type": "array", "items": {"type": "number"}, "nullable": True},
        "fields": {"type": "array", "items": {"type": "object"}},
        "schema_change": {
            "type": "object",
            "description": "Fields added, removed and retyped since the "
            "previous version.",
        },
        "diff": {
            "type": "object",
            "properties": {
                k: {"type": "integer"}
                for k in ("added", "changed", "removed", "unchanged")
            },
        },
        "repaired": {"type": "integer"},
        "empty_geometries": {"type": "integer"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "note": {"type": "string"},
        "withdrawn": {
            "type": "object",
            "nullable": True,
            "description": "When and why a platform admin took the version "
            "down (its data is deleted).",
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "reason": {"type": "string"},
            },
        },
        "links": {"type": "object"},
    },
}
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["queued", "running", "succeeded", "failed"],
        },
        "layer": {"type": "string"},
        "file": {"type": "string"},
        "bytes": {"type": "integer"},
        "progress": {"type": "integer"},
        "total": {"type": "integer", "nullable": True},
        "percent": {"type": "integer", "nullable": True},
        "message": {"type": "string"},
        "error": {
            "type": "string",
            "nullable": True,
            "description": "Why it failed, in words to act on.",
        },
        "version": {"type": "integer", "nullable": True},
        "url": {"type": "string"},
    },
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "action": {"type": "string"},
            "actor": {"type": "string"},
            "version": {"type": "integer", "nullable": True},
        },
    },
}
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": f"{ACCEPTED_FORMATS}.",
                    },
                    "encoding": {
                        "type": "string",
                        "description": "Text encoding of a .dbf or CSV, e.g. "
                        "big5hkscs (default: detected).",
                    },
                    "crs": {
                        "type": "string",
                        "description": "CRS when the file has none, e.g. EPSG:2326.",
                    },
                    "source_layer": {
                        "type": "string",
                        "description": "Dataset inside a GeoPackage or geodatabase.",
                    },
                    "x_field": {"type": "string", "description": "CSV x column."},
                    "y_field": {"type": "string", "description": "CSV y column."},
                    "note": {"type": "string", "description": "Note on the version."},
                },
            }
        }
    },
}
_FORMAT_PARAM = {
    "name": "format",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": list(FORMATS), "default": "gpkg"},
}


def _list_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


def _layer_json(layer: Layer) -> dict[str, Any]:
    with connection() as conn:
        agency = users.get_agency_by_id(conn, layer.agency_id)
        licence = registry.get_licence_by_id(conn, layer.licence_id)
        latest = registry.latest_version_number(conn, layer.id) or None
    links = {
        "self": url_for("api.get_layer", slug=layer.slug, _external=True),
        "versions": url_for("api.list_versions", slug=layer.slug, _external=True),
        "page": url_for("layers.detail", slug=layer.slug, _external=True),
    }
    if layer.published_version is not None:
        links["collection"] = f"{settings().public_url}/collections/{layer.slug}"
    out = dump(layer, agency=agency.code, licence=licence.code, latest_version=latest)
    for internal in ("id", "agency_id", "licence_id", "kind", "time_column"):
        out.pop(internal, None)
    out["links"] = links
    return out


def _job_json(job: Job) -> dict[str, Any]:
    out = job_summary(job)
    out["url"] = url_for("api.get_job", job_id=job.id, _external=True)
    return out


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    """Registry fields from a validated body (licence code -> id)."""
    values = {k: v for k, v in data.items() if k not in ("slug", "agency", "licence")}
    if "keywords" in values:
        values["keywords"] = parse_keywords(values["keywords"])
    if "key_column" in values:
        values["key_column"] = (values["key_column"] or "").strip() or None
    if "licence" in data:
        with connection() as conn:
            values["licence_id"] = registry.get_licence(conn, data["licence"]).id
    return values


@api_route(
    "/layers",
    summary="The layers you manage",
    responses={
        200: ("Your agency's layers (platform admins: all)", _list_of(LAYER_SCHEMA))
    },
)
def list_layers() -> Response:
    """Your agency's layers, by id; platform admins see every agency's."""
    with connection() as conn:
        layers = visible_layers(conn, current_user())
    return jsonify([_layer_json(layer) for layer in layers])


@api_route(
    "/layers",
    ["POST"],
    summary="Register a layer",
    request_schema=LAYER_CREATE,
    responses={
        201: ("The new layer (unpublished, no version yet)", LAYER_SCHEMA),
        404: "No such agency (or not yours).",
        409: "The layer id is taken.",
    },
)
def create_layer() -> tuple[Response, int, dict[str, str]]:
    """Register a layer for your agency (platform admins name the agency)."""
    data = json_body(LAYER_CREATE)
    user = current_user()
    with connection() as conn:
        agency = owning_agency(conn, user, data.get("agency"))
        values = _metadata(data)
        layer = registry.create_layer(
            conn,
            agency,
            registry.LayerInput(slug=data["slug"], **values),
            actor=user.email,
            user_id=user.id,
        )
    body = _layer_json(layer)
    return jsonify(body), 201, {"Location": body["links"]["self"]}


@api_route(
    "/layers/<slug>",
    summary="One layer",
    responses={200: ("The layer", LAYER_SCHEMA), 404: "No such layer (or not yours)."},
)
def get_layer(slug: str) -> Response:
    """A layer's metadata, latest and published version."""
    with connection() as conn:
        layer = load_layer(conn, current_user(), slug)
    return jsonify(_layer_json(layer))


@api_route(
    "/layers/<slug>",
    ["PATCH"],
    summary="Change a layer's metadata",
    request_schema=LAYER_UPDATE,
    responses={
        200: ("The layer", LAYER_SCHEMA),
        403: "Changing the visibility needs an agency admin.",
        404: "No such layer (or not yours).",
    },
)
def update_layer(slug: str) -> Response:
    """Change the given fields; others keep their value. The id cannot change.
    Only agency admins (and platform admins) may change ``visibility``."""
    data = json_body(LAYER_UPDATE)
    user = current_user()
    with connection() as conn:
        layer = load_layer(conn, user, slug, Action.EDIT_LAYER)
        changes = _metadata(data)
        if "key_column" in changes:
            check_key_column(conn, layer, changes["key_column"])
        if changes:
            layer = registry.update_layer(conn, slug, changes, by=user)
    return jsonify(_layer_json(layer))


@api_route(
    "/layers/<slug>/versions",
    ["POST"],
    summary="Upload a new version (queued as a job)",
    endpoint="upload_version",
    request_body=UPLOAD_BODY,
    responses={
        202: ("The queued job; follow its url until it succeeds or fails", JOB_SCHEMA),
        404: "No such layer (or not yours).",
        413: "The file is over the upload limit (SDI_MAX_UPLOAD_BYTES).",
    },
)
@accepts_upload
def upload_version(slug: str) -> tuple[Response, int, dict[str, str]]:
    """Send the file as multipart field ``file``; it streams to disk and is
    loaded by a worker. Broken or hostile zips are refused at once (400).
    The only JSON API route that takes a body over SDI_MAX_FORM_BYTES, read
    only after the token is checked."""
    with connection() as conn:
        job = queue_upload(conn, current_user(), slug)
    body = _job_json(job)
    return jsonify(body), 202, {"Location": body["url"]}


@api_route(
    "/layers/<slug>/versions",
    summary="A layer's versions",
    endpoint="list_versions",
    responses={
        200: ("Every version, newest first", _list_of(VERSION_SCHEMA)),
        404: "No such layer (or not yours).",
    },
)
def list_versions(slug: str) -> Response:
    """Each version with its counts, diff and schema change."""
    with connection() as conn:
        layer = load_layer(conn, current_user(), slug)
        versions = registry.list_versions(conn, layer.id)
        by = uploaders(layer_history(conn, layer))
    return jsonify(
        [
            _version_json(layer, v, previous_of(versions, v.number), by)
            for v in reversed(versions)
        ]
    )


def _version_json(
    layer: Layer, version: Any, previous: Any, by: dict[int, str]
) -> dict[str, Any]:
    out = version_summary(layer, version, previous, uploaded_by=by.get(version.number))
    base = {"slug": layer.slug, "number": version.number, "_external": True}
    if version.withdrawn:
        out["links"] = {"self": url_for("api.get_version", **base)}
        return out
    out["links"] = {
        "self": url_for("api.get_version", **base),
        "preview": url_for("api.preview_version", **base),
        **{
            name: url_for("api.download_version", format=name, **base)
            for name in FORMATS
        },
    }
    return out


@api_route(
    "/layers/<slug>/versions/<int:number>",
    summary="Review one version",
    responses={
        200: ("The version, for review before publishing", VERSION_SCHEMA),
        404: "No such layer or version.",
    },
)
def get_version(slug: str, number: int) -> Response:
    """Feature count, extent, schema and its change, diff stats, repairs."""
    with connection() as conn:
        layer, version = load_version(
            conn, current_user(), slug, number, withdrawn_ok=True
        )
        versions = registry.list_versions(conn, layer.id)
        by = uploaders(layer_history(conn, layer))
    return jsonify(_version_json(layer, version, previous_of(versions, number), by))


@api_route(
    "/layers/<slug>/versions/<int:number>/preview",
    summary="A version's features as GeoJSON (bounded, for previews)",
    endpoint="preview_version",
    responses={
        200: ("GeoJSON FeatureCollection in WGS 84", {"type": "object"}),
        404: "No such layer or version.",
    },
)
def preview_version(slug: str, number: int) -> Response:
    """At most 5,000 features (a stable sample beyond), simplified for display."""
    with connection() as conn:
        layer, version = load_version(conn, current_user(), slug, number)
        return preview_response(conn, layer, version)


@api_route(
    "/layers/<slug>/versions/<int:number>/download",
    summary="Download a version (GeoPackage or GeoJSON)",
    endpoint="download_version",
    parameters=[_FORMAT_PARAM],
    responses={
        200: "The version as a file (EPSG:4326), GeoPackage or GeoJSON.",
        404: "No such layer or version.",
    },
)
def download_version(slug: str, number: int) -> Response:
    """Any version, published or not, as it was uploaded (in WGS 84)."""
    with connection() as conn:
        layer, version = load_version(conn, current_user(), slug, number)
        return send_version(conn, layer, version, request.args.get("format"))


def _version_choice() -> int | None:
    data = request.get_json(silent=True)
    if data is None:
        if request.get_data():
            raise BadInputError(
                'Send a JSON object, e.g. {"version": 3}, with '
                "'Content-Type: application/json'."
            )
        data = {}
    validate(VERSION_CHOICE, data)
    version: int | None = data.get("version")
    return version


@api_route(
    "/layers/<slug>/publish",
    ["POST"],
    summary="Publish a version",
    request_schema=VERSION_CHOICE,
    responses={
        200: ("The layer, now serving the version", LAYER_SCHEMA),
        404: "No such layer or version.",
    },
)
def publish(slug: str) -> Response:
    """Publish ``{"version": n}`` (default: the latest); the API serves it at once."""
    user = current_user()
    with connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        layer = publish_layer(
            conn, settings(), slug, _version_choice(), actor=user.email, user_id=user.id
        )
    return jsonify(_layer_json(layer))


@api_route(
    "/layers/<slug>/rollback",
    ["POST"],
    summary="Roll back to an earlier version",
    request_schema=VERSION_CHOICE,
    responses={
        200: ("The layer, serving the earlier version", LAYER_SCHEMA),
        404: "No such layer or version.",
    },
)
def rollback_layer(slug: str) -> Response:
    """Publish ``{"version": n}`` below the published one (default: the one before)."""
    user = current_user()
    with connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        layer = rollback(
            conn, settings(), slug, _version_choice(), actor=user.email, user_id=user.id
        )
    return jsonify(_layer_json(layer))


@api_route(
    "/layers/<slug>/unpublish",
    ["POST"],
    summary="Withdraw a layer from the API",
    responses={
        200: ("The layer, unpublished (its versions stay)", LAYER_SCHEMA),
        404: "No such layer (or not yours).",
    },
)
def unpublish(slug: str) -> Response:
    """The OGC API stops serving the layer; versions and history stay."""
    user = current_user()
    with connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        layer = unpublish_layer(
            conn, settings(), slug, actor=user.email, user_id=user.id
        )
    return jsonify(_layer_json(layer))


@api_route(
    "/layers/<slug>/history",
    summary="Who uploaded, published and rolled back what, when",
    responses={200: ("Newest first", HISTORY_SCHEMA), 404: "No such layer."},
)
def history(slug: str) -> Response:
    """The layer's audit entries (registration, changes, uploads, publications)."""
    with connection() as conn:
        layer = load_layer(conn, current_user(), slug)
        entries = layer_history(conn, layer)
    return jsonify(entries)


@api_route(
    "/layers/<slug>/jobs",
    summary="A layer's recent upload jobs",
    responses={200: ("Newest first", _list_of(JOB_SCHEMA)), 404: "No such layer."},
)
def layer_jobs(slug: str) -> Response:
    """The layer's last 50 jobs."""
    with connection() as conn:
        layer = load_layer(conn, current_user(), slug)
        jobs = list_jobs(conn, layer_id=layer.id, limit=50)
    return jsonify([_job_json(j) for j in jobs])


@api_route(
    "/jobs/<int:job_id>",
    summary="A job's state",
    responses={200: ("The job", JOB_SCHEMA), 404: "No such job (or not yours)."},
)
def get_job(job_id: int) -> Response:
    """Poll until ``status`` is ``succeeded`` (``version`` is the new version)
    or ``failed`` (``error`` says why; nothing was kept)."""
    with connection() as conn:
        job = load_job(conn, current_user(), job_id)
    response = jsonify(_job_json(job))
    response.headers["Cache-Control"] = "no-store"
    return response
