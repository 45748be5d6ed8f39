"""Registry -> the ``catalog`` collection: OGC API - Records, one record per layer.

The catalogue is one more resource in the configuration :func:`build_config
<sdi.publish.config.build_config>` makes: ``resources["catalog"]``, a
``collection`` whose single ``record`` provider
(:class:`sdi.providers.records.CatalogProvider`) holds the records themselves
in ``providers[0]["data"]["records"]``: a list of GeoJSON Feature dicts whose
``id`` is the layer's slug. The API hides a restricted layer's record from
clients without a key for it by dropping that id from the list.

A record (OGC API - Records, record core):

- ``id``: the slug; ``geometry``: the extent as a CRS84 polygon (a point
  if it has no area; null if unknown); ``time``: the interval from the first
  version's upload to the published version's;
- ``properties``: ``type`` ``dataset``; ``title`` and ``description`` in
  English with ``title_zh`` and ``description_zh`` in Traditional Chinese;
  ``keywords`` (as registered, plus the theme and the agency code);
  ``themes``; ``language`` and ``languages``; ``contacts`` (the owning
  agency: names in both languages, e-mail, roles ``owner`` and
  ``pointOfContact``); ``license`` (SPDX id or ``other``), ``licence`` (the
  registry's code), ``licence_title``/``licence_title_zh``, ``rights``/
  ``rights_zh`` (the attribution to show); ``created`` (the layer's
  registration) and ``updated`` (the published version's upload);
  ``formats``; ``externalIds``; sdi's own ``kind`` (vector or raster),
  ``agency`` (code), ``theme``, ``visibility``, ``version`` (published),
  ``versions`` (1..published: number, upload date, feature or cell count,
  ``published`` on the one served) and ``extent`` (CRS84 bbox);
- ``links`` (absolute, from ``SDI_BASE_URL``): the layer's collection,
  its items and vector tiles (vector) or its coverage and map tiles
  (raster), its queryables, and the licence (``rel: license``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from typing import Any

from psycopg import Connection

from sdi.publish.resources import (
    CRS84,
    TILESETS_VECTOR_REL,
    LayerRecord,
    _bilingual,
    _keywords,
    licence_link,
    published_records,
)
from sdi.settings import Settings

__all__ = [
    "CATALOG_ID",
    "RECORD_CORE",
    "RECORD_PROVIDER",
    "add_catalog",
    "catalog_records",
    "catalog_resource",
    "layer_record",
]

LOGGER = logging.getLogger(__name__)

CATALOG_ID = "catalog"
RECORD_PROVIDER = "sdi.providers.records.CatalogProvider"
RECORD_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
#: The scheme of the themes (the registry's theme names).
THEME_SCHEME = "urn:sdi:theme"
_WORLD = [-180.0, -90.0, 180.0, 90.0]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Registry licence codes with an SPDX identifier; others are "other".
_SPDX = {"cc-by-4.0": "CC-BY-4.0", "odbl-1.0": "ODbL-1.0"}
_LANGUAGES = [
    {"code": "en", "name": "English"},
    {"code": "zh-Hant-HK", "name": "繁體中文（香港）"},
]
_FORMATS = {
    "vector": [
        {"name": "GeoJSON", "mediaType": "application/geo+json"},
        {"name": "HTML", "mediaType": "text/html"},
        {
            "name": "Mapbox Vector Tiles",
            "mediaType": "application/vnd.mapbox-vector-tile",
        },
    ],
    "raster": [
        {"name": "GeoTIFF", "mediaType": "image/tiff; application=geotiff"},
        {"name": "PNG", "mediaType": "image/png"},
        {"name": "CoverageJSON", "mediaType": "application/prs.coverage+json"},
    ],
}
_CATALOG_TITLE = {"en": "Catalogue of published layers", "zh": "已發佈圖層目錄"}
_CATALOG_DESCRIPTION = {
    "en": "One record per published layer (OGC API - Records): titles and "
    "descriptions in English and Chinese, owner, licence, extent, versions and "
    "links to the layer's services. Search with q, bbox, datetime, agency, kind, "
    "licence, theme or keywords.",
    "zh": "每個已發佈圖層一筆記錄（OGC API - Records）：中英文標題及說明、"
    "資料擁有者、授權條款、範圍、版本及圖層服務連結。可用 q、bbox、datetime、"
    "agency、kind、licence、theme 或 keywords 搜尋。",
}
_CATALOG_KEYWORDS = {
    "en": ["catalogue", "metadata", "OGC API - Records"],
    "zh": ["目錄", "元數據", "OGC API - Records"],
}


def _iso(value: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _bbox(record: LayerRecord) -> list[float] | None:
    extent = record.version.extent
    if not extent:
        raster = record.version.schema.get("raster")
        extent = raster.get("bounds_wgs84") if isinstance(raster, dict) else None
    if not extent or len(extent) != 4:
        return None
    return [float(v) for v in extent]


def _geometry(bbox: list[float] | None) -> dict[str, Any] | None:
    if bbox is None:
        return None
    minx, miny, maxx, maxy = bbox
    if minx == maxx and miny == maxy:
        return {"type": "Point", "coordinates": [minx, miny]}
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _contact(record: LayerRecord) -> dict[str, Any]:
    agency, layer = record.agency, record.layer
    email = layer.contact if _EMAIL.match(layer.contact or "") else agency.contact_email
    contact: dict[str, Any] = {
        "identifier": agency.code,
        "organization": agency.name_en,
        "organization_zh": agency.name_zh or agency.name_en,
        "roles": ["owner", "pointOfContact"],
    }
    if email:
        contact["emails"] = [{"value": email}]
        contact["links"] = [
            {"rel": "about", "type": "text/html", "href": f"mailto:{email}"}
        ]
    return contact


def _versions(record: LayerRecord) -> list[dict[str, Any]]:
    count = "cells" if record.layer.kind == "raster" else "features"
    return [
        {
            "number": v.number,
            "created": _iso(v.created_at),
            count: v.feature_count,
            "published": v.number == record.version.number,
        }
        for v in record.versions or (record.version,)
    ]


def _links(record: LayerRecord, base_url: str) -> list[dict[str, str]]:
    layer, licence = record.layer, record.licence
    href = f"{base_url}/collections/{layer.slug}"
    title = " / ".join(t for t in (layer.title_en, layer.title_zh) if t)
    links = [
        {"rel": "collection", "type": "application/json", "title": title, "href": href}
    ]
    if layer.kind == "raster":
        links += [
            {
                "rel": f"{OGC_REL}/coverage",
                "type": "image/tiff; application=geotiff",
                "title": "Coverage (GeoTIFF)",
                "href": f"{href}/coverage",
            },
            {
                "rel": f"{OGC_REL}/tilesets-map",
                "type": "application/json",
                "title": "Map tiles (PNG)",
                "href": f"{href}/map/tiles",
            },
        ]
    else:
        links += [
            {
                "rel": "items",
                "type": "application/geo+json",
                "title": "Features (GeoJSON)",
                "href": f"{href}/items",
            },
            {
                "rel": TILESETS_VECTOR_REL,
                "type": "application/json",
                "title": "Vector tiles",
                "href": f"{href}/tiles",
            },
            {
                "rel": f"{OGC_REL}/queryables",
                "type": "application/schema+json",
                "title": "Queryables",
                "href": f"{href}/queryables",
            },
        ]
    if licence.url:
        links.append(licence_link(licence))
    return links


def layer_record(record: LayerRecord, base_url: str) -> dict[str, Any]:
    """The catalogue record (a GeoJSON Feature) of one published layer."""
    layer, version, agency, licence = (
        record.layer,
        record.version,
        record.agency,
        record.licence,
    )
    title = _bilingual(layer.title_en, layer.title_zh)
    abstract = _bilingual(
        layer.abstract_en.strip() or layer.title_en, layer.abstract_zh.strip()
    )
    bbox = _bbox(record)
    first = (record.versions or (version,))[0]
    properties: dict[str, Any] = {
        "type": "dataset",
        "title": title["en"],
        "title_zh": title["zh"],
        "description": abstract["en"],
        "description_zh": abstract["zh"],
        "keywords": _keywords(record),
        "themes": (
            [{"concepts": [{"id": layer.theme}], "scheme": THEME_SCHEME}]
            if layer.theme
            else []
        ),
        "language": dict(_LANGUAGES[0]),
        "languages": [dict(lang) for lang in _LANGUAGES],
        "contacts": [_contact(record)],
        "license": _SPDX.get(licence.code, "other"),
        "licence": licence.code,
        "licence_title": licence.name_en,
        "licence_title_zh": licence.name_zh or licence.name_en,
        "rights": licence.attribution_en or licence.attribution_zh,
        "rights_zh": licence.attribution_zh or licence.attribution_en,
        "created": _iso(layer.created_at),
        "updated": _iso(version.created_at),
        "formats": [dict(f) for f in _FORMATS.get(layer.kind, [])],
        "externalIds": [{"scheme": "urn:sdi:layer", "value": layer.slug}],
        "kind": layer.kind,
        "agency": agency.code,
        "theme": layer.theme,
        "visibility": layer.visibility,
        "version": version.number,
        "versions": _versions(record),
    }
    if layer.update_frequency:
        properties["updateFrequency"] = layer.update_frequency
    if bbox is not None:
        properties["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return {
        "id": layer.slug,
        "type": "Feature",
        "conformsTo": [RECORD_CORE],
        "geometry": _geometry(bbox),
        "time": {"interval": [_iso(first.created_at), _iso(version.created_at)]},
        "properties": properties,
        "links": _links(record, base_url),
    }


def catalog_records(
    conn: Connection[Any],
    settings: Settings,
    served: Iterable[str] | None = None,
    records: list[LayerRecord] | None = None,
) -> list[dict[str, Any]]:
    """The records of the published layers, by slug.

    ``served``: the slugs the configuration has a collection for (a layer
    left out there, e.g. a raster whose file is missing, is left out here too);
    None for every published layer. ``records`` (:func:`published_records`)
    saves reading the registry again.
    """
    if records is None:
        records = published_records(conn, settings.storage_srid)
    wanted = None if served is None else set(served)
    return [
        layer_record(r, settings.public_url)
        for r in records
        if wanted is None or r.layer.slug in wanted
    ]


def _union(records: list[dict[str, Any]]) -> list[float]:
    boxes = [
        r["properties"]["extent"]["spatial"]["bbox"][0]
        for r in records
        if "extent" in r["properties"] and r["properties"]["visibility"] == "public"
    ]
    if not boxes:
        return list(_WORLD)
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def catalog_resource(
    conn: Connection[Any],
    settings: Settings,
    served: Iterable[str] | None = None,
    records: list[LayerRecord] | None = None,
) -> dict[str, Any]:
    """The pygeoapi resource of the catalogue.

    Its records are at ``providers[0]["data"]["records"]``.

    The collection's extent covers the public layers only (it is not filtered
    per client, unlike the records).
    """
    entries = catalog_records(conn, settings, served, records)
    return {
        "type": "collection",
        "title": dict(_CATALOG_TITLE),
        "description": dict(_CATALOG_DESCRIPTION),
        "keywords": {k: list(v) for k, v in _CATALOG_KEYWORDS.items()},
        "links": [],
        "extents": {"spatial": {"bbox": _union(entries), "crs": CRS84}},
        "providers": [
            {
                "type": "record",
                "name": RECORD_PROVIDER,
                # A mapping, as pygeoapi's configuration schema wants.
                "data": {"records": entries},
                "id_field": "id",
                "title_field": "title",
                "time_field": "updated",
            }
        ],
    }


def add_catalog(
    resources: dict[str, Any],
    conn: Connection[Any],
    settings: Settings,
    served: Iterable[str],
    records: list[LayerRecord] | None = None,
) -> None:
    """Add the catalogue of the layers ``served`` to ``resources`` as ``catalog``.

    A resource of that name already there (a layer slugged ``catalog``) wins,
    and the catalogue is left out (logged).
    """
    if CATALOG_ID in resources:
        LOGGER.error(
            "a resource is named %r already: the layer catalogue is not served",
            CATALOG_ID,
        )
        return
    resources[CATALOG_ID] = catalog_resource(conn, settings, served, records)
