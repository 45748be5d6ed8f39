"""OpenAPI for what sdi's items handlers add to pygeoapi's feature routes.

``sdi.api.features`` serves ``/collections/{id}/items`` and ``.../items/{id}``
for every sdi vector layer with more parameters than pygeoapi declares
(``version``, the ``after`` cursor of ``next`` links, CQL2 ``filter``) and two
routes of its own, ``/versions`` and ``/changes``. :func:`add_feature_paths`
declares them in the document pygeoapi generated.
"""

from __future__ import annotations

import copy
from typing import Any

from sdi.publish.resources import PROVIDER_NAME

__all__ = ["add_feature_paths"]

_GEOJSON = "application/geo+json"


def _version(versions: list[int], published: int) -> dict[str, Any]:
    return {
        "name": "version",
        "in": "query",
        "required": False,
        "description": (
            "The version of the layer to query (default: the published version, "
            f"{published}). A version's content never changes; its responses "
            "are cached for a limited time (Cache-Control max-age), since a "
            "version can be withdrawn. The versions are listed at "
            "/collections/{collectionId}/versions."
        ),
        "schema": {
            "type": "integer",
            "minimum": min(versions, default=1),
            "maximum": published,
            "default": published,
        },
        "style": "form",
        "explode": False,
    }


_AFTER = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": (
        "Paging cursor set by next links: the page starts after this feature "
        "id (in the default order; not with sortby). Follow the links rather "
        "than setting it."
    ),
    "schema": {"type": "integer", "minimum": 0},
    "style": "form",
    "explode": False,
}

_FILTER = [
    {
        "name": "filter",
        "in": "query",
        "required": False,
        "description": "A CQL2 filter (OGC API - Features Part 3) on the queryables.",
        "schema": {"type": "string"},
        "style": "form",
        "explode": False,
    },
    {
        "name": "filter-lang",
        "in": "query",
        "required": False,
        "description": "The language of filter.",
        "schema": {
            "type": "string",
            "enum": ["cql2-text", "cql2-json"],
            "default": "cql2-text",
        },
        "style": "form",
        "explode": False,
    },
    {
        "name": "filter-crs",
        "in": "query",
        "required": False,
        "description": "The CRS of the coordinates in filter (default CRS84).",
        "schema": {"type": "string", "format": "uri"},
        "style": "form",
        "explode": False,
    },
]

_ERRORS = {
    "400": {"description": "Invalid parameter (OGC exception JSON)."},
    "404": {"description": "Unknown collection or version (OGC exception JSON)."},
    "410": {
        "description": "The version was withdrawn, or rolled back below "
        "(OGC exception JSON with the reason and a latest-version link)."
    },
    "500": {"description": "Server error (OGC exception JSON)."},
}
_NOT_MODIFIED = {"304": {"description": "Not modified (If-None-Match)."}}


def _int_param(name: str, description: str, minimum: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum},
        "style": "form",
        "explode": False,
    }


def _sdi_layer(resource: dict[str, Any]) -> dict[str, Any] | None:
    if resource.get("type") != "collection":
        return None
    for provider in resource.get("providers") or []:
        if provider.get("type") == "feature" and provider.get("name") == PROVIDER_NAME:
            return provider if isinstance(provider.get("data"), dict) else None
    return None


def _add_parameters(operation: dict[str, Any], extra: list[dict[str, Any]]) -> None:
    parameters = operation.setdefault("parameters", [])
    named = {p.get("name") for p in parameters if isinstance(p, dict)}
    for parameter in extra:
        if parameter["name"] not in named:
            parameters.append(copy.deepcopy(parameter))


def add_feature_paths(openapi: dict[str, Any], config: dict[str, Any]) -> None:
    """Declare sdi's item parameters, ``/versions`` and ``/changes`` per layer."""
    paths = openapi.setdefault("paths", {})
    for slug, resource in (config.get("resources") or {}).items():
        provider = _sdi_layer(resource)
        if provider is None:
            continue
        data = provider["data"]
        published = int(data.get("version") or 1)
        versions = [int(v["number"]) for v in data.get("versions") or []]
        version = _version(versions, published)
        base = f"/collections/{slug}"
        items = (paths.get(f"{base}/items") or {}).get("get")
        if isinstance(items, dict):
            _add_parameters(items, [version, _AFTER, *_FILTER])
            items.setdefault("responses", {}).update(copy.deepcopy(_NOT_MODIFIED))
        item = (paths.get(f"{base}/items/{{featureId}}") or {}).get("get")
        if isinstance(item, dict):
            _add_parameters(item, [version])
            item.setdefault("responses", {}).update(copy.deepcopy(_NOT_MODIFIED))
        paths[f"{base}/versions"] = {
            "get": {
                "tags": [slug],
                "summary": "The versions of the layer that can be queried",
                "description": (
                    "Newest first: number, creation time, number of features, "
                    "whether it is the published one, and links to its features "
                    "and to its changes from the version before."
                ),
                "operationId": f"get{slug.capitalize()}Versions",
                "responses": {
                    "200": {
                        "description": "The versions",
                        "content": {"application/json": {}},
                    },
                    **copy.deepcopy(_NOT_MODIFIED),
                    **copy.deepcopy(_ERRORS),
                },
            }
        }
        paths[f"{base}/changes"] = {
            "get": {
                "tags": [slug],
                "summary": "What changed between two versions, as features",
                "description": (
                    "A GeoJSON FeatureCollection of the features added, changed "
                    "or removed from version `from` to version `to`, each with a "
                    '`"change"` member (`added`, `changed`: the new state, '
                    "`removed`: the old state) and the attributes of its version; "
                    "`changes` counts each kind. Paged like items."
                ),
                "operationId": f"get{slug.capitalize()}Changes",
                "parameters": [
                    _int_param(
                        "from",
                        "The version compared from (default: the one before "
                        "`to`; 0 is the empty layer before version 1).",
                    ),
                    _int_param(
                        "to",
                        f"The version compared to (default: the published one, "
                        f"{published}).",
                        1,
                    ),
                    {"$ref": "#/components/parameters/crs"},
                    _int_param("limit", "Features per page.", 1),
                    {"$ref": "#/components/parameters/offset"},
                ],
                "responses": {
                    "200": {
                        "description": "The changed features",
                        "content": {_GEOJSON: {}},
                    },
                    **copy.deepcopy(_NOT_MODIFIED),
                    **copy.deepcopy(_ERRORS),
                },
            }
        }
