"""OGC API handlers for raster collections: coverages, map tiles, conformance.

They have pygeoapi's API-function shape, ``f(api, request, ...) -> (headers,
status, content)``, and run through the app's executor like pygeoapi's own.

* ``/collections/{id}/coverage`` (OGC API - Coverages): pygeoapi's handler
  passes neither ``scale-size``/``scale-factor``/``scale-axes`` nor formats
  other than one native one to its provider, and its HTML page loads scripts
  from CDNs; this one hands every parameter to
  :class:`sdi.providers.coverage.CogCoverageProvider` and answers GeoTIFF, PNG,
  CoverageJSON or an HTML page of sdi's own. Collections whose coverage
  provider is not sdi's go to pygeoapi's handler.
* ``/collections/{id}/coverage/domainset`` and ``.../rangetype``.
* ``/collections/{id}/map/tiles`` (the tile sets), ``.../map/tiles/WebMercatorQuad``
  (one tile set) and ``.../map/tiles/WebMercatorQuad/{z}/{y}/{x}`` (PNG tiles;
  OGC API - Tiles "geodata-tilesets" for maps). Not pygeoapi's tiles API: that
  one is built around MVT providers and would declare MVT conformance.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pygeoapi.api as core_api
import pygeoapi.api.coverages as coverages_api
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_HTML, F_JSON, F_PNG, FORMAT_TYPES
from pygeoapi.plugin import load_plugin
from pygeoapi.provider import get_provider_by_type
from pygeoapi.provider.base import ProviderGenericError, ProviderTypeError
from pygeoapi.util import render_j2_template, to_json

from sdi.api.caching import version_cache_control
from sdi.api.raster_versions import definition_for
from sdi.api.render_limit import RenderBusyError, SlotHolder, render_limiter
from sdi.api.versions import VersionError, error_result
from sdi.providers.coverage import (
    GEOTIFF_MEDIA_TYPE,
    CogCoverageProvider,
    coverage_format,
)
from sdi.providers.coverage_json import MEDIA_TYPE as COVERAGEJSON_MEDIA_TYPE
from sdi.providers.raster import RasterInfo
from sdi.providers.raster_tiles import (
    EPSG_3857_URI,
    MAX_ZOOM,
    TILE_SIZE,
    WEB_MERCATOR_QUAD,
    WEB_MERCATOR_QUAD_URI,
    render_tile,
    tile_ranges,
)
from sdi.publish.rasters import COVERAGE_PROVIDER

__all__ = [
    "TILE_CACHE_SECONDS",
    "get_coverage",
    "get_coverage_domainset",
    "get_coverage_rangetype",
    "get_map_tile",
    "get_map_tileset",
    "get_map_tilesets",
]

LOGGER = logging.getLogger(__name__)

Result = tuple[dict[str, Any], int, str | bytes | Iterator[bytes]]

#: How long clients and proxies may reuse a tile without asking again. Short,
#: because publishing a new version changes the tiles behind the same URL;
#: after that, the ETag makes revalidation cheap.
TILE_CACHE_SECONDS = 300
_OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
_COVERAGES = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
_TIFF_TYPES = ("image/tiff", "image/geotiff")
_PREVIEW_CELLS = 1024


# -- helpers ------------------------------------------------------------------


def _raster_provider(api: API, dataset: str) -> dict[str, Any] | None:
    """The definition of ``dataset``'s sdi coverage provider, if it has one."""
    resource = api.config["resources"].get(dataset)
    if not isinstance(resource, dict) or resource.get("type") != "collection":
        return None
    try:
        provider = get_provider_by_type(resource.get("providers", []), "coverage")
    except ProviderTypeError:
        return None
    return provider if provider.get("name") == COVERAGE_PROVIDER else None


def _error(
    api: API, request: APIRequest, status: int, code: str, message: str
) -> Result:
    headers = request.get_response_headers(**api.api_headers)
    fmt = F_HTML if request.format == F_HTML else F_JSON
    headers["Content-Type"] = FORMAT_TYPES[fmt]
    return api.get_exception(status, headers, fmt, code, message)  # type: ignore[no-any-return]


def _busy(api: API, request: APIRequest, err: RenderBusyError) -> Result:
    """503 with Retry-After: every render slot of this worker is taken."""
    headers, status, content = _error(
        api, request, HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", err.message
    )
    headers["Retry-After"] = str(err.retry_after)
    return headers, status, content


def _not_found(api: API, request: APIRequest, dataset: str, what: str) -> Result:
    return _error(
        api,
        request,
        HTTPStatus.NOT_FOUND,
        "NotFound",
        f"Collection {dataset!r} has no {what}.",
    )


def _provider_error(api: API, request: APIRequest, err: ProviderGenericError) -> Result:
    headers, status, content = _error(
        api, request, err.http_status_code, err.ogc_exception_code, err.message
    )
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = "1"
    return headers, status, content


def _load(definition: dict[str, Any]) -> CogCoverageProvider:
    provider = load_plugin("provider", definition)
    assert isinstance(provider, CogCoverageProvider)
    return provider


def _requested_format(request: APIRequest) -> str | None:
    """``GTiff``, ``png``, ``json``, ``html`` or None (unknown ``f``)."""
    raw = request.params.get("f")
    if raw:
        if raw.strip().lower() == "html":
            return "html"
        return coverage_format(raw)
    accept = (request.headers.get("Accept") or "").lower()
    if any(t in accept for t in _TIFF_TYPES):
        return "GTiff"
    if request.format in (F_HTML, F_PNG):
        return str(request.format)
    return "json"


# -- coverages ----------------------------------------------------------------


def get_coverage(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/coverage``: a subset as GeoTIFF, PNG, JSON or HTML."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        if dataset in api.config["resources"]:
            result: Result = coverages_api.get_collection_coverage(
                api, request, dataset
            )
            return result
        return _not_found(api, request, dataset, "coverage")
    try:
        definition, explicit = definition_for(dataset, definition, request.params)
    except VersionError as err:
        return error_result(api, request, err)
    fmt = _requested_format(request)
    if fmt is None:
        return _error(
            api,
            request,
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValue",
            f"Unknown coverage format f={request.params.get('f')!r}; use GTiff, "
            "png, json (CoverageJSON) or html.",
        )
    slot = SlotHolder(render_limiter())
    data: bytes | Iterator[bytes] = b""
    try:
        provider = _load(definition)
        if fmt == F_HTML:
            return _coverage_page(api, request, dataset, provider)
        params = request.params
        bbox = params.get("bbox")
        subset = params.get("subset")
        properties = params.get("properties")
        data = provider.query(
            properties=[p for p in properties.split(",") if p] if properties else None,
            subsets=_subsets(subset) if subset else None,
            bbox=_bbox(bbox) if bbox else None,
            bbox_crs=params.get("bbox-crs"),
            datetime_=params.get("datetime"),
            format_=fmt,
            scale_size=params.get("scale-size"),
            scale_factor=params.get("scale-factor"),
            scale_axes=params.get("scale-axes"),
            before_read=slot,
        )
    except RenderBusyError as err:
        return _busy(api, request, err)
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    except ValueError as err:
        return _error(
            api, request, HTTPStatus.BAD_REQUEST, "InvalidParameterValue", str(err)
        )
    finally:
        if isinstance(data, bytes):  # a streamed body keeps its slot
            slot.release()
    headers = request.get_response_headers(**api.api_headers)
    if explicit:
        headers["Cache-Control"] = version_cache_control()
    if fmt == "GTiff":
        headers["Content-Type"] = GEOTIFF_MEDIA_TYPE
        headers["Content-Disposition"] = f'inline; filename="{provider.filename}.tif"'
        assert isinstance(data, bytes)
        return headers, HTTPStatus.OK, data
    if fmt == "png":
        headers["Content-Type"] = FORMAT_TYPES[F_PNG]
        assert isinstance(data, bytes)
        return headers, HTTPStatus.OK, data
    # CoverageJSON is streamed; the render slot is held until the body is sent
    # (or SDI_RENDER_HOLD_S runs out).
    assert not isinstance(data, bytes)
    headers["Content-Type"] = COVERAGEJSON_MEDIA_TYPE
    return headers, HTTPStatus.OK, slot.body(data)


def _bbox(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError("bbox values must be numbers.") from None
    if len(values) not in (4, 6):
        raise ValueError("bbox takes 4 numbers (minx,miny,maxx,maxy) or 6.")
    return values


def _subsets(text: str) -> dict[str, list[Any]]:
    try:
        subsets: dict[str, list[Any]] = core_api.validate_subset(text)
    except (AttributeError, ValueError) as err:
        raise ValueError(
            "subset takes axis(low:high) or axis(value), comma separated, e.g. "
            "subset=E(830000:832000),N(815000:817000)."
        ) from err
    return subsets


def _coverage_page(
    api: API, request: APIRequest, dataset: str, provider: CogCoverageProvider
) -> Result:
    """sdi's HTML page of a coverage request: the PNG and the download links."""
    params = {k: v for k, v in request.params.items() if k != "f"}
    scaled = any(k.startswith("scale-") for k in params)
    preview = dict(params)
    if not scaled and not any(k in params for k in ("bbox", "subset")):
        longest = max(provider.info.width, provider.info.height)
        if longest > _PREVIEW_CELLS:
            preview["scale-factor"] = f"{longest / _PREVIEW_CELLS:.6g}"
    base = f"{api.get_collections_url()}/{dataset}/coverage"

    def url(fmt: str, query: dict[str, str]) -> str:
        return f"{base}?{urllib.parse.urlencode({'f': fmt, **query})}"

    title = l10n.translate(api.config["resources"][dataset]["title"], request.locale)
    data = {
        "id": dataset,
        "title": title,
        "collections_path": api.get_collections_url(),
        "dataset_path": f"{api.get_collections_url()}/{dataset}",
        "query_path": base,
        "image": url("png", preview),
        "axes": provider.axes,
        "crs": provider.info.crs_uri,
        "size": [provider.info.width, provider.info.height],
        "bands": list(provider.fields),
        "links": [
            {
                "type": GEOTIFF_MEDIA_TYPE,
                "title": "GeoTIFF",
                "href": url("GTiff", params),
            },
            {"type": FORMAT_TYPES[F_PNG], "title": "PNG", "href": url("png", params)},
            {
                "type": "application/prs.coverage+json",
                "title": "CoverageJSON",
                "href": url("json", params),
            },
        ],
    }
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_HTML]
    content = render_j2_template(
        api.tpl_config,
        api.get_dataset_templates(dataset),
        "collections/coverage/index.html",
        data,
        request.locale,
    )
    return headers, HTTPStatus.OK, content


def get_coverage_domainset(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/coverage/domainset``: the grid (CIS JSON)."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        return _not_found(api, request, dataset, "coverage domain set")
    try:
        definition, explicit = definition_for(dataset, definition, request.params)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    try:
        domainset = _load(definition).domainset()
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    if explicit:
        headers["Cache-Control"] = version_cache_control()
    return headers, HTTPStatus.OK, to_json(domainset, api.pretty_print)


def get_coverage_rangetype(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/coverage/rangetype``: the bands (CIS JSON)."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        return _not_found(api, request, dataset, "coverage range type")
    try:
        definition, explicit = definition_for(dataset, definition, request.params)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    try:
        rangetype = _load(definition).rangetype()
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    if explicit:
        headers["Cache-Control"] = version_cache_control()
    return headers, HTTPStatus.OK, to_json(rangetype, api.pretty_print)


# -- map tiles ------------------------------------------------------------------


def _raster_info(definition: dict[str, Any]) -> RasterInfo:
    return RasterInfo.from_config(
        definition.get("data"), (definition.get("options") or {}).get("raster")
    )


def _tileset_links(api: API, dataset: str) -> list[dict[str, Any]]:
    base = f"{api.get_collections_url()}/{dataset}/map/tiles/{WEB_MERCATOR_QUAD}"
    return [
        {
            "rel": "self",
            "type": FORMAT_TYPES[F_JSON],
            "title": f"{dataset} map tiles in {WEB_MERCATOR_QUAD}",
            "href": f"{base}?f=json",
        },
        {
            "rel": f"{_OGC_REL}/tiling-scheme",
            "type": FORMAT_TYPES[F_JSON],
            "title": f"{WEB_MERCATOR_QUAD} definition",
            "href": f"{api.base_url}/TileMatrixSets/{WEB_MERCATOR_QUAD}?f=json",
        },
        {
            "rel": "item",
            "type": FORMAT_TYPES[F_PNG],
            "title": "Map tiles (PNG)",
            "href": base + "/{tileMatrix}/{tileRow}/{tileCol}",
            "templated": True,
        },
    ]


def _tileset(api: API, dataset: str) -> dict[str, Any]:
    return {
        "title": dataset,
        "dataType": "map",
        "crs": EPSG_3857_URI,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "links": _tileset_links(api, dataset),
    }


def get_map_tilesets(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/map/tiles``: the map tile sets (WebMercatorQuad)."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        return _not_found(api, request, dataset, "map tiles")
    body = {
        "links": [
            {
                "rel": "self",
                "type": FORMAT_TYPES[F_JSON],
                "title": "This document",
                "href": f"{api.get_collections_url()}/{dataset}/map/tiles?f=json",
            },
            {
                "rel": "collection",
                "type": FORMAT_TYPES[F_JSON],
                "title": "The collection",
                "href": f"{api.get_collections_url()}/{dataset}?f=json",
            },
        ],
        "tilesets": [_tileset(api, dataset)],
    }
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    return headers, HTTPStatus.OK, to_json(body, api.pretty_print)


def get_map_tileset(
    api: API, request: APIRequest, dataset: str, matrix_set: str
) -> Result:
    """``/collections/{dataset}/map/tiles/{matrix_set}``: one tile set's metadata."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        return _not_found(api, request, dataset, "map tiles")
    if matrix_set != WEB_MERCATOR_QUAD:
        return _not_found(api, request, dataset, f"map tiles in {matrix_set!r}")
    try:
        info = _raster_info(definition)
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    body = _tileset(api, dataset) | {
        "tileMatrixSetLimits": [r.to_json() for r in tile_ranges(info)],
        "boundingBox": {
            "lowerLeft": list(info.bounds_wgs84[:2]),
            "upperRight": list(info.bounds_wgs84[2:]),
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "tileWidth": TILE_SIZE,
        "tileHeight": TILE_SIZE,
        "minTileMatrix": "0",
        "maxTileMatrix": str(MAX_ZOOM),
    }
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    return headers, HTTPStatus.OK, to_json(body, api.pretty_print)


def _etag(info: RasterInfo, z: int, y: int, x: int) -> str:
    # A version's COG never changes; its path, size and mtime name the tile's
    # content (the stat also tells a layer re-created under the same id apart).
    try:
        stat = os.stat(info.path)
        stamp = f"{stat.st_size}.{stat.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    key = f"{info.path}|{stamp}|{z}/{y}/{x}".encode()
    return '"' + hashlib.blake2b(key, digest_size=12).hexdigest() + '"'


def get_map_tile(
    api: API,
    request: APIRequest,
    dataset: str,
    matrix_set: str,
    z: int,
    y: int,
    x: int,
) -> Result:
    """``.../map/tiles/WebMercatorQuad/{z}/{y}/{x}``: a 256 x 256 PNG (204: empty)."""
    definition = _raster_provider(api, dataset)
    if definition is None:
        return _not_found(api, request, dataset, "map tiles")
    if matrix_set != WEB_MERCATOR_QUAD:
        return _not_found(api, request, dataset, f"map tiles in {matrix_set!r}")
    try:
        definition, explicit = definition_for(dataset, definition, request.params)
        info = _raster_info(definition)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    headers = request.get_response_headers(**api.api_headers)
    headers.pop("Content-Language", None)
    headers["Cache-Control"] = (
        version_cache_control() if explicit else f"public, max-age={TILE_CACHE_SECONDS}"
    )
    etag = _etag(info, z, y, x)
    headers["ETag"] = etag
    if etag in (request.headers.get("If-None-Match") or ""):
        headers.pop("Content-Type", None)
        return headers, HTTPStatus.NOT_MODIFIED, b""
    slot = SlotHolder(render_limiter())
    try:
        png = render_tile(info, z, y, x, before_read=slot)
    except RenderBusyError as err:
        return _busy(api, request, err)
    except ValueError as err:
        return _error(api, request, HTTPStatus.NOT_FOUND, "NotFound", str(err))
    except ProviderGenericError as err:
        return _provider_error(api, request, err)
    finally:
        slot.release()
    if png is None:
        headers.pop("Content-Type", None)
        return headers, HTTPStatus.NO_CONTENT, b""
    headers["Content-Type"] = FORMAT_TYPES[F_PNG]
    return headers, HTTPStatus.OK, png
