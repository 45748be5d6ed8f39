"""Registry -> pygeoapi coverage collections, one per published public raster layer.

A raster layer's published version is a COG under ``SDI_RASTER_DIR``; its
collection has one ``coverage`` provider (:mod:`sdi.providers.coverage`)
whose definition carries the version's grid, bands and statistics, so that
pygeoapi describes the collection without opening the file. The collection's
links add what pygeoapi does not generate itself: the coverage's domain set
and range type, a PNG rendering, and the map tile sets served by
:mod:`sdi.api.rasters`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from psycopg import Connection

from sdi.publish.resources import (
    CRS84,
    LayerRecord,
    _bilingual,
    _descriptions,
    _keywords,
    _links,
    attribution,
    gone_versions,
    published_records,
)
from sdi.settings import Settings

__all__ = [
    "COVERAGE_PROVIDER",
    "GEOTIFF_MEDIA_TYPE",
    "OGC_REL",
    "add_raster_paths",
    "raster_resource",
    "raster_resources",
]

LOGGER = logging.getLogger(__name__)

COVERAGE_PROVIDER = "sdi.providers.coverage.CogCoverageProvider"
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
#: Longest side of the PNG preview linked from the collection.
_PREVIEW_CELLS = 1024


def _preview_query(raster: dict[str, Any]) -> str:
    """``scale-size`` that fits the whole coverage into a modest PNG."""
    width, height = int(raster["width"]), int(raster["height"])
    scale = min(1.0, _PREVIEW_CELLS / max(width, height))
    if scale >= 1.0:
        return ""
    return f"&scale-factor={1 / scale:.6g}"


def _raster_links(
    record: LayerRecord, raster: dict[str, Any], base_url: str
) -> list[dict[str, str]]:
    href = f"{base_url}/collections/{record.layer.slug}"
    return [
        {
            "type": "application/json",
            "rel": f"{OGC_REL}/coverage-domainset",
            "title": "Domain set of the coverage (its grid)",
            "href": f"{href}/coverage/domainset?f=json",
        },
        {
            "type": "application/json",
            "rel": f"{OGC_REL}/coverage-rangetype",
            "title": "Range type of the coverage (its bands)",
            "href": f"{href}/coverage/rangetype?f=json",
        },
        {
            "type": "image/png",
            "rel": f"{OGC_REL}/coverage",
            "title": "Coverage as PNG (scaled to fit 1024 pixels)",
            "href": f"{href}/coverage?f=png{_preview_query(raster)}",
        },
        {
            "type": "application/json",
            "rel": f"{OGC_REL}/tilesets-map",
            "title": "Map tiles (PNG, WebMercatorQuad)",
            "href": f"{href}/map/tiles?f=json",
        },
    ]


def _served_versions(
    record: LayerRecord, settings: Settings
) -> dict[str, dict[str, Any]]:
    """``{number: {data, raster, created}}`` of versions 1..published served."""
    served: dict[str, dict[str, Any]] = {}
    for version in record.versions or (record.version,):
        raster = version.schema.get("raster")
        if not isinstance(raster, dict) or not raster.get("file"):
            continue
        served[str(version.number)] = {
            "data": str((settings.raster_dir / str(raster["file"])).resolve()),
            "raster": raster,
            "created": version.created_at.isoformat(),
        }
    return served


def raster_resource(
    record: LayerRecord, settings: Settings, raster: dict[str, Any]
) -> dict[str, Any]:
    """The pygeoapi resource definition of one published raster layer."""
    layer, version = record.layer, record.version
    path = settings.raster_dir / str(raster["file"])
    provider: dict[str, Any] = {
        "type": "coverage",
        "name": COVERAGE_PROVIDER,
        "data": str(path.resolve()),
        "format": {"name": "GTiff", "mimetype": GEOTIFF_MEDIA_TYPE},
        "storage_crs": raster["crs_uri"],
        "options": {
            "layer": layer.slug,
            "version": version.number,
            "max_cells": settings.max_coverage_cells,
            "max_json_cells": settings.max_coverage_json_cells,
            "max_upsample": settings.max_coverage_upsample,
            "raster": raster,
            # ?version=N (sdi.api.versions): each served version's COG and grid.
            "versions": _served_versions(record, settings),
            **gone_versions(record),
        },
    }
    return {
        "type": "collection",
        "title": _bilingual(layer.title_en, layer.title_zh),
        "description": _descriptions(record),
        "keywords": _keywords(record),
        "attribution": attribution(record.agency, record.licence),
        "links": _links(record) + _raster_links(record, raster, settings.public_url),
        "extents": {
            "spatial": {
                "bbox": [float(v) for v in raster["bounds_wgs84"]],
                "crs": CRS84,
            }
        },
        "providers": [provider],
    }


def raster_resources(
    conn: Connection[Any],
    settings: Settings,
    records: list[LayerRecord] | None = None,
) -> dict[str, Any]:
    """``{slug: resource}`` for every published raster layer, by slug.

    Restricted layers included (the API shows them to granted API keys only);
    a published version whose COG is missing is logged and left out.
    ``records`` (:func:`published_records`) saves reading the registry again.
    """
    if records is None:
        records = published_records(conn, settings.storage_srid)
    resources: dict[str, Any] = {}
    for record in records:
        if record.layer.kind != "raster":
            continue
        layer, version = record.layer, record.version
        raster = version.schema.get("raster")
        if not isinstance(raster, dict) or not raster.get("file"):
            LOGGER.error("raster layer %s v%d has no COG", layer.slug, version.number)
            continue
        path = settings.raster_dir / str(raster["file"])
        if not path.is_file():
            LOGGER.error("raster layer %s: %s is missing", layer.slug, path)
            continue
        resources[layer.slug] = raster_resource(record, settings, raster)
    return resources


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_SCALING = [
    _query(
        "scale-size",
        "Output size per axis, e.g. E(512),N(512) (axes as in the domain set).",
        {"type": "string"},
    ),
    _query(
        "scale-factor",
        "Divide the number of cells along every axis by this (2 halves them).",
        {"type": "number", "exclusiveMinimum": 0},
    ),
    _query("scale-axes", "A factor per axis, e.g. E(2),N(2).", {"type": "string"}),
]
_VERSION = _query(
    "version",
    "The version of the layer (default: the published one); an explicit "
    "version's responses never change. Withdrawn versions answer 410.",
    {"type": "integer", "minimum": 1},
)
_GONE = {
    "410": {
        "description": "The version was withdrawn, or rolled back below "
        "(OGC exception JSON with the reason and a latest-version link)."
    }
}
_JSON_200 = {
    "200": {"description": "OK", "content": {"application/json": {}}},
    "404": {"description": "No such collection, or it is not a raster."},
}


def add_raster_paths(openapi: dict[str, Any], config: dict[str, Any]) -> None:
    """Describe sdi's raster routes (``sdi.api.rasters``) in ``openapi``.

    pygeoapi documents ``/collections/{id}/coverage`` without the scaling
    parameters and nothing of the domain set, range type or map tiles.
    """
    paths = openapi.setdefault("paths", {})
    for slug, resource in (config.get("resources") or {}).items():
        providers = resource.get("providers") or []
        if not any(p.get("name") == COVERAGE_PROVIDER for p in providers):
            continue
        base = f"/collections/{slug}"
        coverage = paths.get(f"{base}/coverage", {}).get("get")
        if coverage is not None:
            coverage["parameters"] = [
                p
                for p in coverage.get("parameters", [])
                if p not in _SCALING and p != _VERSION
            ] + copy.deepcopy([*_SCALING, _VERSION])
            coverage.setdefault("responses", {}).update(copy.deepcopy(_GONE))
        tms = _path_param("tileMatrixSetId", "Tile matrix set: WebMercatorQuad.")
        get = {"tags": [slug], "responses": copy.deepcopy(_JSON_200)}
        paths[f"{base}/coverage/domainset"] = {
            "get": get | {"summary": "Domain set (grid) of the coverage",
                          "operationId": f"get{slug}CoverageDomainSet"}
        }  # fmt: skip
        paths[f"{base}/coverage/rangetype"] = {
            "get": get | {"summary": "Range type (bands) of the coverage",
                          "operationId": f"get{slug}CoverageRangeType"}
        }  # fmt: skip
        paths[f"{base}/map/tiles"] = {
            "get": get | {"summary": "Map tile sets",
                          "operationId": f"get{slug}MapTileSets"}
        }  # fmt: skip
        paths[f"{base}/map/tiles/{{tileMatrixSetId}}"] = {
            "get": get | {"summary": "A map tile set", "parameters": [tms],
                          "operationId": f"get{slug}MapTileSet"}
        }  # fmt: skip
        tile = "{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
        paths[f"{base}/map/tiles/{tile}"] = {
            "get": {
                "tags": [slug],
                "summary": "A 256 x 256 PNG map tile",
                "operationId": f"get{slug}MapTile",
                "parameters": [
                    tms,
                    _path_param("tileMatrix", "Zoom level, 0 to 24."),
                    _path_param("tileRow", "Row, from the top."),
                    _path_param("tileCol", "Column, from the left."),
                    copy.deepcopy(_VERSION),
                ],
                "responses": {
                    "200": {"description": "The tile", "content": {"image/png": {}}},
                    "204": {"description": "The tile holds no data."},
                    "304": {"description": "Not modified (If-None-Match)."},
                    "404": {"description": "No such tile or collection."},
                    **copy.deepcopy(_GONE),
                },
            }
        }  # fmt: skip
