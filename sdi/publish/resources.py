"""Registry -> pygeoapi ``collection`` resources, one per published public layer."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from sdi.registry import (
    Agency,
    Layer,
    Licence,
    Version,
    list_agencies,
    list_layers,
    list_licences,
    list_versions,
)
from sdi.registry.catalog import table_columns, table_srid

__all__ = [
    "CRS84",
    "ID_FIELD",
    "PROVIDER_NAME",
    "SUPPORTED_CRS",
    "TILESETS_VECTOR_REL",
    "LayerRecord",
    "attribution",
    "build_resources",
    "collection_resource",
    "crs_uri",
    "field_schema",
    "gone_versions",
    "licence_link",
    "published_records",
    "restricted_layers",
]

LOGGER = logging.getLogger(__name__)

PROVIDER_NAME = "sdi.providers.features.VersionedFeatureProvider"
ID_FIELD = "_sdi_fid"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Output CRSs every collection offers (OGC API - Features Part 2).
SUPPORTED_CRS = (
    CRS84,
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/2326",
    "http://www.opengis.net/def/crs/EPSG/0/3857",
)
_WORLD = [-180.0, -90.0, 180.0, 90.0]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_INTEGER = {"bigint", "integer", "smallint"}
_NUMBER = {"double precision", "real"}
_FORMATS = {
    "date": "date",
    "timestamp without time zone": "date-time",
    "timestamp with time zone": "date-time",
    "time without time zone": "time",
}


@dataclass(frozen=True)
class LayerRecord:
    """Everything the registry and catalog say about one published layer."""

    layer: Layer
    version: Version
    agency: Agency
    licence: Licence
    columns: dict[str, str]
    srid: int
    #: Versions 1..published, oldest first: the ones the API lets clients query
    #: (withdrawn ones left out).
    versions: tuple[Version, ...] = ()
    #: Versions taken down (any number): the API answers 410 Gone with the reason.
    withdrawn: tuple[Version, ...] = ()
    #: Versions above the published one that were published once (before a
    #: roll back): 410 Gone with a link to the published version, not 404.
    retired: tuple[int, ...] = ()


def gone_versions(record: LayerRecord) -> dict[str, Any]:
    """The configuration's ``withdrawn`` and ``retired`` entries of a layer.

    What :mod:`sdi.api.versions` needs to answer 410 rather than 404.
    """
    return {
        "withdrawn": [
            {
                "number": v.number,
                "withdrawn": v.withdrawn_at.isoformat() if v.withdrawn_at else "",
                "reason": v.withdrawn_reason or "",
            }
            for v in record.withdrawn
        ],
        "retired": list(record.retired),
    }


def crs_uri(srid: int) -> str:
    """The OGC URI of a storage SRID; 4326 is stored longitude first, i.e. CRS84."""
    if srid == 4326:
        return CRS84
    return f"http://www.opengis.net/def/crs/EPSG/0/{srid}"


def field_schema(sql_type: str) -> dict[str, str]:
    """JSON Schema type (and format) of a column's SQL type."""
    base = sql_type.split("(")[0].strip()
    if base in _INTEGER:
        return {"type": "integer"}
    if base in _NUMBER or base == "numeric":
        return {"type": "number"}
    if base == "boolean":
        return {"type": "boolean"}
    if base in _FORMATS:
        return {"type": "string", "format": _FORMATS[base]}
    return {"type": "string"}


def _published_fields(record: LayerRecord) -> dict[str, dict[str, str]]:
    """The version's attributes in file order, typed by the table's columns now.

    A later upload may have widened a column (integer to text): the table's
    type is what PostgreSQL returns, so it is what we declare.
    """
    declared = [f["name"] for f in record.version.schema.get("fields", [])]
    names = declared or list(record.columns)
    fields: dict[str, dict[str, str]] = {}
    for name in names:
        sql_type = record.columns.get(name)
        if sql_type is None:
            LOGGER.warning(
                "%s v%d: column %r is missing from the table; not published",
                record.layer.slug,
                record.version.number,
                name,
            )
            continue
        fields[name] = field_schema(sql_type)
    return fields


def _version_list(record: LayerRecord) -> list[dict[str, Any]]:
    """The queryable versions (oldest first): number, size, date, attribute names."""
    out = []
    for version in record.versions or (record.version,):
        names = [f["name"] for f in version.schema.get("fields", [])]
        out.append(
            {
                "number": version.number,
                "features": version.feature_count,
                "created": version.created_at.isoformat(),
                "fields": [n for n in names if n in record.columns]
                or list(record.columns),
            }
        )
    return out


def _title_field(fields: dict[str, dict[str, str]]) -> str | None:
    """An attribute to label features with on HTML pages, if one looks like a name."""
    strings = [n for n, spec in fields.items() if spec["type"] == "string"]
    named = [n for n in strings if "name" in n.lower()]
    english = [n for n in named if re.search(r"(en|eng|_e)$", n.lower())]
    candidates = english or named
    return candidates[0] if candidates else None


def _bilingual(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh or en}


def _descriptions(record: LayerRecord) -> dict[str, str]:
    layer, agency, licence = record.layer, record.agency, record.licence
    en = [
        layer.abstract_en.strip(),
        f"Owner: {agency.name_en}.",
        f"Licence: {licence.name_en}.",
    ]
    zh = [
        (layer.abstract_zh or layer.abstract_en).strip(),
        f"資料擁有者：{agency.name_zh or agency.name_en}。",
        f"授權條款：{licence.name_zh or licence.name_en}。",
    ]
    if licence.attribution_en or licence.attribution_zh:
        en.append(f"Attribution: {licence.attribution_en or licence.attribution_zh}.")
        # The Chinese attributions read as sentences already ("資料來源：...").
        zh.append(f"{licence.attribution_zh or licence.attribution_en}。")
    if layer.update_frequency:
        en.append(f"Updated: {layer.update_frequency}.")
        zh.append(f"更新頻率：{layer.update_frequency}。")
    en.append(f"Version {record.version.number}.")
    zh.append(f"版本 {record.version.number}。")
    # Chinese sentences follow each other without spaces.
    return {"en": " ".join(p for p in en if p), "zh": "".join(p for p in zh if p)}


#: OGC link relation of a collection's vector tile sets.
TILESETS_VECTOR_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


def licence_link(licence: Licence) -> dict[str, str]:
    """The ``rel="license"`` link of a licence with a URL (bilingual title)."""
    return {
        "type": "text/html",
        "rel": "license",
        "title": " / ".join(t for t in (licence.name_en, licence.name_zh) if t),
        "href": licence.url or "",
    }


def _links(record: LayerRecord, base_url: str = "") -> list[dict[str, str]]:
    licence, agency, layer = record.licence, record.agency, record.layer
    links: list[dict[str, str]] = []
    if licence.url:
        links.append(licence_link(licence))
    email = layer.contact if _EMAIL.match(layer.contact or "") else agency.contact_email
    if email:
        links.append(
            {
                "type": "text/html",
                "rel": "author",
                "title": " / ".join(t for t in (agency.name_en, agency.name_zh) if t),
                "href": f"mailto:{email}",
            }
        )
    if base_url:
        collection = f"{base_url.rstrip('/')}/collections/{layer.slug}"
        links += [
            {
                "type": "application/json",
                "rel": TILESETS_VECTOR_REL,
                "title": "Vector tiles / 向量圖塊",
                "href": f"{collection}/tiles",
            },
            {
                "type": "application/json",
                "rel": "version-history",
                "title": "Versions / 版本",
                "href": f"{collection}/versions",
            },
        ]
    return links


def attribution(agency: Agency, licence: Licence) -> dict[str, str]:
    """Who to credit when showing the data: the owner and the licence's sentence."""
    en = [agency.name_en, licence.attribution_en or licence.attribution_zh]
    zh = [
        agency.name_zh or agency.name_en,
        licence.attribution_zh or licence.attribution_en,
    ]
    return {"en": "; ".join(p for p in en if p), "zh": "；".join(p for p in zh if p)}


def _keywords(record: LayerRecord) -> list[str]:
    words = list(record.layer.keywords)
    for extra in (record.layer.theme, record.agency.code):
        if extra and extra not in words:
            words.append(extra)
    return words


def collection_resource(record: LayerRecord, base_url: str = "") -> dict[str, Any]:
    """The pygeoapi resource definition of one published layer.

    With ``base_url`` (the API's public URL) the links include the layer's
    vector tiles and version history.
    """
    layer, version = record.layer, record.version
    fields = _published_fields(record)
    storage_crs = crs_uri(record.srid)
    crs = list(SUPPORTED_CRS)
    if storage_crs not in crs:
        crs.append(storage_crs)
    provider: dict[str, Any] = {
        "type": "feature",
        "name": PROVIDER_NAME,
        "data": {
            "table": layer.slug,
            "version": version.number,
            "srid": record.srid,
            "fields": fields,
            "versions": _version_list(record),
            **gone_versions(record),
        },
        "id_field": ID_FIELD,
        "storage_crs": storage_crs,
        "crs": crs,
    }
    title_field = _title_field(fields)
    if title_field is not None:
        provider["title_field"] = title_field
    if layer.time_column and layer.time_column in fields:
        provider["time_field"] = layer.time_column
    return {
        "type": "collection",
        "title": _bilingual(layer.title_en, layer.title_zh),
        "description": _descriptions(record),
        "keywords": _keywords(record),
        # Not a pygeoapi key: sdi adds it to the collection's JSON.
        "attribution": attribution(record.agency, record.licence),
        "links": _links(record, base_url),
        "extents": {
            "spatial": {
                "bbox": [float(v) for v in (version.extent or _WORLD)],
                "crs": CRS84,
            }
        },
        "providers": [provider],
    }


def published_records(conn: Connection[Any], default_srid: int) -> list[LayerRecord]:
    """Every published layer, vector and raster, read from the registry once.

    Each with its agency, licence and versions 1..published; vector layers
    also with their table's columns and SRID (one without a table, or a layer
    whose published version is missing, is logged and left out). Restricted
    layers are included: the API shows them only to API keys granted for them
    (sdi.api.access).
    """
    agencies = {a.id: a for a in list_agencies(conn)}
    licences = {lic.id: lic for lic in list_licences(conn)}
    records = []
    for layer in list_layers(conn, published=True):
        published = layer.published_version
        if published is None:
            continue
        every = list_versions(conn, layer.id)
        versions = tuple(v for v in every if v.number <= published and not v.withdrawn)
        version = next((v for v in versions if v.number == published), None)
        if version is None:
            LOGGER.error(
                "layer %s: published version %d is missing", layer.slug, published
            )
            continue
        columns: dict[str, str] = {}
        srid = 0
        if layer.kind == "vector":
            found = table_columns(conn, layer.slug)
            if found is None:
                LOGGER.error("layer %s is published but has no table", layer.slug)
                continue
            columns = found
            srid = table_srid(conn, layer.slug) or int(
                version.schema.get("srid") or default_srid
            )
        records.append(
            LayerRecord(
                layer=layer,
                version=version,
                agency=agencies[layer.agency_id],
                licence=licences[layer.licence_id],
                columns=columns,
                srid=srid,
                versions=versions,
                # Only versions the API once served: a withdrawn draft stays 404.
                withdrawn=tuple(
                    v
                    for v in every
                    if v.withdrawn
                    and (v.number <= published or v.first_published_at is not None)
                ),
                retired=tuple(
                    v.number
                    for v in every
                    if v.number > published
                    and not v.withdrawn
                    and v.first_published_at is not None
                ),
            )
        )
    return records


def restricted_layers(conn: Connection[Any]) -> dict[str, int]:
    """``{slug: layer id}`` of the published layers only API keys may see."""
    return {
        layer.slug: layer.id
        for layer in list_layers(conn, published=True)
        if layer.visibility != "public"
    }


def build_resources(
    conn: Connection[Any],
    default_srid: int,
    base_url: str = "",
    records: list[LayerRecord] | None = None,
) -> dict[str, Any]:
    """``{slug: resource}`` for every published vector layer, by slug.

    Restricted layers included: :func:`restricted_layers` names them.
    ``records`` (:func:`published_records`) saves reading the registry again.
    """
    if records is None:
        records = published_records(conn, default_srid)
    return {
        r.layer.slug: collection_resource(r, base_url)
        for r in records
        if r.layer.kind == "vector"
    }
