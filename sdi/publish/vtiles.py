"""The OpenAPI description of the vector tile routes (:mod:`sdi.api.vtiles`)."""

from __future__ import annotations

import copy
from typing import Any

from sdi.providers.mvt import EXACT_ZOOM, MAX_ZOOM, MVT_MEDIA_TYPE
from sdi.publish.resources import PROVIDER_NAME

__all__ = ["add_vector_tile_paths"]


def _param(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }
    if where == "query":
        param |= {"style": "form", "explode": False}
    return param


_VERSION = _param(
    "version",
    "query",
    "Version number of the layer (1 to the published one; default: the "
    "published version). Tiles of an explicit version never change.",
    type="integer",
    minimum=1,
)
_TMS = _param("tileMatrixSetId", "path", "Tile matrix set: WebMercatorQuad.")
_TILE = [
    _TMS,
    _param("tileMatrix", "path", f"Zoom level, 0 to {MAX_ZOOM}."),
    _param("tileRow", "path", "Row, from the top (0 to 2^tileMatrix - 1)."),
    _param("tileCol", "path", "Column, from the left (0 to 2^tileMatrix - 1)."),
    _VERSION,
    _param(
        "properties",
        "query",
        "Attributes the features carry, comma separated; * for all, empty for "
        "none. Default: the layer's title attribute, if it has one. The "
        "feature id is always the MVT feature id.",
    ),
    _param("f", "query", "Format: mvt.", type="string", enum=["mvt"]),
]
_JSON = {"description": "OK", "content": {"application/json": {}}}
_ERRORS = {
    "400": {"description": "A parameter is not valid."},
    "404": {"description": "No such collection, version or tile matrix set."},
}


def _version_param(providers: list[dict[str, Any]]) -> dict[str, Any]:
    """``version``, bounded by the layer's published version when known."""
    param = copy.deepcopy(_VERSION)
    provider = next(p for p in providers if p.get("name") == PROVIDER_NAME)
    published = (provider.get("data") or {}).get("version")
    if isinstance(published, int) and not isinstance(published, bool):
        param["schema"] |= {"maximum": published, "default": published}
    return param


def add_vector_tile_paths(openapi: dict[str, Any], config: dict[str, Any]) -> None:
    """Describe the vector tile routes of every vector layer of ``config``."""
    paths = openapi.setdefault("paths", {})
    for slug, resource in (config.get("resources") or {}).items():
        if resource.get("type") != "collection":
            continue
        providers = resource.get("providers") or []
        if not any(p.get("name") == PROVIDER_NAME for p in providers):
            continue
        base = f"/collections/{slug}/tiles"
        version = _version_param(providers)
        tile_params = [version if p["name"] == "version" else p for p in _TILE]
        paths[base] = {
            "get": {
                "tags": [slug],
                "summary": "Vector tile sets (Mapbox Vector Tiles)",
                "operationId": f"get{slug}VectorTileSets",
                "parameters": [copy.deepcopy(version)],
                "responses": {"200": copy.deepcopy(_JSON), **copy.deepcopy(_ERRORS)},
            }
        }
        paths[f"{base}/{{tileMatrixSetId}}"] = {
            "get": {
                "tags": [slug],
                "summary": "A vector tile set: limits, layer, attributes, licence",
                "operationId": f"get{slug}VectorTileSet",
                "parameters": [copy.deepcopy(_TMS), copy.deepcopy(version)],
                "responses": {"200": copy.deepcopy(_JSON), **copy.deepcopy(_ERRORS)},
            }
        }
        paths[f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"] = {
            "get": {
                "tags": [slug],
                "summary": "A vector tile (Mapbox Vector Tile, 4096 units)",
                "description": (
                    f"Below zoom level {EXACT_ZOOM}, features smaller than a "
                    "pixel are left out and outlines are simplified within a "
                    "pixel; from it on, every feature is there."
                ),
                "operationId": f"get{slug}VectorTile",
                "parameters": copy.deepcopy(tile_params),
                "responses": {
                    "200": {"description": "The tile", "content": {MVT_MEDIA_TYPE: {}}},
                    "204": {"description": "The tile holds no feature."},
                    "304": {"description": "Not modified (If-None-Match)."},
                    **copy.deepcopy(_ERRORS),
                },
            }
        }
