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
)
from sdi.registry import get_version, list_agencies, list_layers, list_licences
from sdi.settings import Settings

__all__ = [
    "COVERAGE_PROVIDER",
    "GEOTIFF_MEDIA_TYPE",
    "OGC_REL",
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
            "raster": raster,
        },
    }
    return {
        "type": "collection",
        "title": _bilingual(layer.title_en, layer.title_zh),
        "description": _descriptions(record),
        "keywords": _keywords(record),
        "links": _links(record) + _raster_links(record, raster, settings.public_url),
        "extents": {
            "spatial": {
                "bbox": [float(v) for v in raster["bounds_wgs84"]],
                "crs": CRS84,
            }
        },
        "providers": [provider],
    }


def raster_resources(conn: Connection[Any], settings: Settings) -> dict[str, Any]:
    """``{slug: resource}`` for every published public raster layer, by slug.

    Restricted layers are not served (as for vector layers, they wait for API
    keys); a published version whose COG is missing is logged and left out.
    """
    agencies = {a.id: a for a in list_agencies(conn)}
    licences = {lic.id: lic for lic in list_licences(conn)}
    resources: dict[str, Any] = {}
    for layer in list_layers(conn, published=True):
        if layer.kind != "raster" or layer.visibility != "public":
            continue
        if layer.published_version is None:
            continue
        version = get_version(conn, layer.id, layer.published_version)
        raster = version.schema.get("raster")
        if not isinstance(raster, dict) or not raster.get("file"):
            LOGGER.error("raster layer %s v%d has no COG", layer.slug, version.number)
            continue
        path = settings.raster_dir / str(raster["file"])
        if not path.is_file():
            LOGGER.error("raster layer %s: %s is missing", layer.slug, path)
            continue
        record = LayerRecord(
            layer=layer,
            version=version,
            agency=agencies[layer.agency_id],
            licence=licences[layer.licence_id],
            columns={},
            srid=0,
        )
        resources[layer.slug] = raster_resource(record, settings, raster)
    return resources
