"""OGC API - Tiles handlers for vector layers: Mapbox Vector Tiles in WebMercatorQuad.

pygeoapi-shaped handlers (``f(api, request, ...) -> (headers, status,
content)``) run by :func:`sdi.api.runtime.execute`, for every vector layer the
request's ``API`` object serves (:func:`sdi.api.layers.vector_layer`: restricted
layers only for keys granted them):

* ``/collections/{id}/tiles``: the vector tile sets (one: WebMercatorQuad);
* ``/collections/{id}/tiles/WebMercatorQuad``: tile set metadata (limits,
  bounding box, licence and attribution, the layer and its attributes);
* ``/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}``: one tile
  (``application/vnd.mapbox-vector-tile``), cut by :mod:`sdi.providers.mvt`.

Parameters of a tile: ``version=N`` (1..published; default the published
one) and ``properties=a,b`` (the attributes to carry; ``*`` all of them;
empty none). By default a tile carries the feature id (``_sdi_fid``, as the
MVT feature id) and the layer's title attribute if it has one: attributes are
most of a dense tile's bytes (the 30,000 buildings of a z14 tile over Central
are 0.76 MB without attributes, 3 MB with all six).

Empty tiles are 204 No Content. Caching: tiles of an explicitly requested
version are public for ``SDI_VERSION_MAX_AGE``
(:func:`sdi.api.caching.version_cache_control`); tiles of the published
version may change with the next publication (``max-age``
:data:`~sdi.api.rasters.TILE_CACHE_SECONDS`); both carry a strong ETag and
answer ``If-None-Match`` with 304.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import urllib.parse
import weakref
from http import HTTPStatus
from typing import Any

from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_JSON, FORMAT_TYPES
from pygeoapi.provider.base import ProviderGenericError
from pygeoapi.util import to_json

from sdi.api.caching import version_cache_control
from sdi.api.layers import VectorLayer, vector_layer
from sdi.api.rasters import TILE_CACHE_SECONDS
from sdi.api.versions import VersionError, error_result, requested_version
from sdi.providers.mvt import (
    BUFFER,
    EXACT_ZOOM,
    EXTENT,
    MAX_ZOOM,
    MVT_MEDIA_TYPE,
    TileLayer,
    geometry_type,
    largest_feature,
    render_vector_tile,
    tile_in_matrix_set,
)
from sdi.providers.raster_tiles import (
    EPSG_3857_URI,
    WEB_MERCATOR_QUAD,
    WEB_MERCATOR_QUAD_URI,
    mercator_bounds,
    tile_bounds,
)

__all__ = [
    "get_vector_tile",
    "get_vector_tileset",
    "get_vector_tilesets",
]

LOGGER = logging.getLogger(__name__)

Result = tuple[dict[str, Any], int, str | bytes]

_OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
_CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_ORIGIN = 20037508.342789244  # half the WebMercatorQuad square, metres
#: Bump when tiles of the same data come out differently (simplification...):
#: part of every ETag, so that tiles of a version are not cached across it.
_TILE_SCHEME = "mvt-1"
_INTEGER = re.compile(r"^[0-9]{1,9}$")
_DIMENSIONS = {
    "POINT": 0,
    "MULTIPOINT": 0,
    "LINESTRING": 1,
    "MULTILINESTRING": 1,
    "POLYGON": 2,
    "MULTIPOLYGON": 2,
}
#: Facts about layer versions (which never change), per API object:
#: (what, slug, version) -> value; what is "geometry" or "largest".
_FACTS: weakref.WeakKeyDictionary[API, dict[tuple[str, str, int], Any]] = (
    weakref.WeakKeyDictionary()
)
#: Up to this zoom level a tile request may scan the layer once for its
#: largest feature: tiles whose pixel is larger are then empty at once.
_SIZE_SCAN_ZOOM = 12
_LOCK = threading.Lock()


class _RequestError(Exception):
    """A request this module refuses: answered as an OGC exception."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- helpers ------------------------------------------------------------------


def _error(
    api: API, request: APIRequest, status: int, code: str, message: str
) -> Result:
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    headers.pop("ETag", None)
    headers.pop("Cache-Control", None)
    return api.get_exception(status, headers, F_JSON, code, message)  # type: ignore[no-any-return]


def _layer(api: API, dataset: str) -> VectorLayer:
    layer = vector_layer(api, dataset)
    if layer is None:
        raise _RequestError(
            HTTPStatus.NOT_FOUND,
            "NotFound",
            f"Collection {dataset!r} has no vector tiles.",
        )
    return layer


def _check_matrix_set(dataset: str, matrix_set: str) -> None:
    if matrix_set != WEB_MERCATOR_QUAD:
        raise _RequestError(
            HTTPStatus.NOT_FOUND,
            "NotFound",
            f"Collection {dataset!r} has no tiles in {matrix_set!r}; "
            f"use {WEB_MERCATOR_QUAD}.",
        )


def _version(layer: VectorLayer, request: APIRequest) -> tuple[int, bool]:
    """The version asked for (default: the published one) and whether it was."""
    return requested_version(layer.rules, request.params)


def _default_properties(layer: VectorLayer, version: int) -> tuple[str, ...]:
    """The version's title attribute, chosen from its own attributes only.

    The rule of the collection's ``title_field`` (a string attribute named
    like a name, English first), applied to the version's attributes rather
    than read from the configuration: a later publication must not change
    what an (immutable) tile of an earlier version carries.
    """
    fields = layer.fields_of(version)
    named = [
        n
        for n, spec in fields.items()
        if spec.get("type") == "string" and "name" in n.lower()
    ]
    english = [n for n in named if re.search(r"(en|eng|_e)$", n.lower())]
    chosen = english or named
    return (chosen[0],) if chosen else ()


def _properties(
    layer: VectorLayer, version: int, request: APIRequest
) -> tuple[str, ...]:
    raw = request.params.get("properties")
    if raw is None:
        return _default_properties(layer, version)
    fields = layer.fields_of(version)
    text = str(raw).strip()
    if text == "*":
        return tuple(fields)
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in fields]
    if unknown:
        raise _RequestError(
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValue",
            f"Unknown properties {', '.join(map(repr, unknown))} in version "
            f"{version}; choose among {', '.join(fields) or 'none'}, or * for all.",
        )
    chosen = set(wanted)
    return tuple(n for n in fields if n in chosen)


def _check_format(request: APIRequest, *allowed: str) -> None:
    raw = request.params.get("f")
    if raw is not None and str(raw).strip().lower() not in allowed:
        raise _RequestError(
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValue",
            f"Unknown format f={raw!r} here; use {' or '.join(allowed)}.",
        )


def _query(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v is not None}
    return "?" + urllib.parse.urlencode(kept, safe=",*") if kept else ""


def _title(layer: VectorLayer, request: APIRequest) -> str:
    title = l10n.translate(layer.title, request.locale)
    return str(title or layer.slug)


def _description(layer: VectorLayer, request: APIRequest) -> str:
    text = l10n.translate(layer.resource.get("description"), request.locale)
    return str(text or "")


def _attribution(layer: VectorLayer, request: APIRequest) -> str | None:
    """Who to credit: the owner and the licence's attribution sentence."""
    text = l10n.translate(layer.resource.get("attribution"), request.locale)
    return str(text) if text else None


def _bbox(layer: VectorLayer) -> tuple[float, float, float, float] | None:
    spatial = (layer.resource.get("extents") or {}).get("spatial") or {}
    box = spatial.get("bbox")
    if isinstance(box, list) and box and isinstance(box[0], list):
        box = box[0]
    if not isinstance(box, list) or len(box) < 4:
        return None
    values = [float(v) for v in box]
    west, south, east, north = (
        (values[0], values[1], values[3], values[4])
        if len(values) == 6
        else (values[0], values[1], values[2], values[3])
    )
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return None
    return west, south, east, north


def _limits(bounds: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """The tiles holding the extent, per zoom level (every level served)."""
    left, bottom, right, top = mercator_bounds(bounds)
    limits = []
    for z in range(MAX_ZOOM + 1):
        last = (1 << z) - 1
        size = 2 * _ORIGIN / (1 << z)

        def index(v: float, last: int = last) -> int:
            return max(0, min(last, math.floor(v)))

        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": index((_ORIGIN - top) / size),
                "maxTileRow": index((_ORIGIN - bottom) / size - 1e-9),
                "minTileCol": index((left + _ORIGIN) / size),
                "maxTileCol": index((right + _ORIGIN) / size - 1e-9),
            }
        )
    return limits


def _known(api: API, key: tuple[str, str, int]) -> tuple[bool, Any]:
    with _LOCK:
        facts = _FACTS.setdefault(api, {})
        return key in facts, facts.get(key)


def _remember(api: API, key: tuple[str, str, int], value: Any) -> None:
    with _LOCK:
        _FACTS.setdefault(api, {})[key] = value


def _geometry_type(api: API, layer: VectorLayer, version: int) -> str | None:
    key = ("geometry", layer.slug, version)
    known, value = _known(api, key)
    if not known:
        value = geometry_type(layer.table, layer.srid, version)
        _remember(api, key, value)
    return value if isinstance(value, str) else None


def _largest(api: API, layer: VectorLayer, version: int, z: int) -> float | None:
    """The version's largest feature size when known, or worth finding out."""
    if layer.srid != 4326 or z >= EXACT_ZOOM:
        return None
    key = ("largest", layer.slug, version)
    known, value = _known(api, key)
    if not known and z <= _SIZE_SCAN_ZOOM:
        value = largest_feature(layer.table, version)
        _remember(api, key, value)
    return float(value) if isinstance(value, float) else None


def _tiles_url(api: API, dataset: str) -> str:
    return f"{api.get_collections_url()}/{dataset}/tiles"


def _tileset_links(api: API, dataset: str, version: int | None) -> list[dict[str, Any]]:
    base = f"{_tiles_url(api, dataset)}/{WEB_MERCATOR_QUAD}"
    return [
        {
            "rel": "self",
            "type": FORMAT_TYPES[F_JSON],
            "title": f"{dataset} vector tiles in {WEB_MERCATOR_QUAD}",
            "href": base + _query(f="json", version=version),
        },
        {
            "rel": f"{_OGC_REL}/tiling-scheme",
            "type": FORMAT_TYPES[F_JSON],
            "title": f"{WEB_MERCATOR_QUAD} definition",
            "href": f"{api.base_url}/TileMatrixSets/{WEB_MERCATOR_QUAD}?f=json",
        },
        {
            "rel": "item",
            "type": MVT_MEDIA_TYPE,
            "title": "Vector tiles (Mapbox Vector Tile)",
            "href": base
            + "/{tileMatrix}/{tileRow}/{tileCol}"
            + _query(f="mvt", version=version),
            "templated": True,
        },
    ]


def _tileset_summary(
    api: API, layer: VectorLayer, request: APIRequest, version: int | None
) -> dict[str, Any]:
    return {
        "title": _title(layer, request),
        "dataType": "vector",
        "crs": EPSG_3857_URI,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "links": _tileset_links(api, layer.slug, version),
    }


def _json(api: API, request: APIRequest, body: dict[str, Any]) -> Result:
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    return headers, HTTPStatus.OK, to_json(body, api.pretty_print)


# -- handlers -----------------------------------------------------------------


def get_vector_tilesets(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/tiles``: the vector tile sets (WebMercatorQuad)."""
    try:
        layer = _layer(api, dataset)
        _check_format(request, F_JSON)
        version, explicit = _version(layer, request)
    except _RequestError as err:
        return _error(api, request, err.status, err.code, err.message)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    shown = version if explicit else None
    collection = f"{api.get_collections_url()}/{dataset}"
    body = {
        "links": [
            {
                "rel": "self",
                "type": FORMAT_TYPES[F_JSON],
                "title": "This document",
                "href": _tiles_url(api, dataset) + _query(f="json", version=shown),
            },
            {
                "rel": "collection",
                "type": FORMAT_TYPES[F_JSON],
                "title": "The collection",
                "href": f"{collection}?f=json",
            },
        ],
        "tilesets": [_tileset_summary(api, layer, request, shown)],
    }
    return _json(api, request, body)


def get_vector_tileset(
    api: API, request: APIRequest, dataset: str, matrix_set: str
) -> Result:
    """``/collections/{dataset}/tiles/{matrix_set}``: the tile set's metadata."""
    try:
        layer = _layer(api, dataset)
        _check_matrix_set(dataset, matrix_set)
        _check_format(request, F_JSON)
        version, explicit = _version(layer, request)
        geometry = _geometry_type(api, layer, version)
    except _RequestError as err:
        return _error(api, request, err.status, err.code, err.message)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    except ProviderGenericError as err:
        return _error(
            api, request, err.http_status_code, err.ogc_exception_code, err.message
        )
    shown = version if explicit else None
    fields = layer.fields_of(version)
    defaults = _default_properties(layer, version)
    title = _title(layer, request)
    layer_meta: dict[str, Any] = {
        "id": layer.slug,
        "title": title,
        "description": (
            "Features carry their id (_sdi_fid) as the MVT feature id"
            + (f" and the attribute {defaults[0]}" if defaults else "")
            + "; choose attributes with properties=a,b (* for all). Below zoom "
            f"level {EXACT_ZOOM}, features smaller than a pixel are left out and "
            "outlines are simplified within a pixel."
        ),
        "dataType": "vector",
        "minTileMatrix": "0",
        "maxTileMatrix": str(EXACT_ZOOM),
        "propertiesSchema": {
            "type": "object",
            "properties": {
                "_sdi_fid": {"type": "integer", "description": "Feature id"},
                **fields,
            },
        },
        "defaultProperties": list(defaults),
    }
    if geometry is not None:
        layer_meta["geometryType"] = geometry
        dimension = _DIMENSIONS.get(geometry.upper())
        if dimension is not None:
            layer_meta["geometryDimension"] = dimension
    body: dict[str, Any] = {
        "title": title,
        "description": _description(layer, request),
        "version": str(version),
        "dataType": "vector",
        "crs": EPSG_3857_URI,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "mediaTypes": [MVT_MEDIA_TYPE],
    }
    licences = layer.licence_links
    if licences:
        body["license"] = " / ".join(
            link.get("title") or link.get("href", "") for link in licences
        )
    attribution = _attribution(layer, request)
    if attribution:
        body["attribution"] = attribution
    bounds = _bbox(layer) if version == layer.version else None
    if bounds is not None:
        box = {
            "lowerLeft": [bounds[0], bounds[1]],
            "upperRight": [bounds[2], bounds[3]],
            "crs": _CRS84,
        }
        body["tileMatrixSetLimits"] = _limits(bounds)
        body["boundingBox"] = box
        layer_meta["boundingBox"] = box
    body["layers"] = [layer_meta]
    body["links"] = [
        *_tileset_links(api, dataset, shown),
        {
            "rel": "collection",
            "type": FORMAT_TYPES[F_JSON],
            "title": "The collection",
            "href": f"{api.get_collections_url()}/{dataset}?f=json",
        },
        *licences,
    ]
    return _json(api, request, body)


def _tile_numbers(z: str, y: str, x: str) -> tuple[int, int, int]:
    if not all(_INTEGER.match(v) for v in (z, y, x)):
        raise _RequestError(
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValue",
            "tileMatrix, tileRow and tileCol must be whole numbers, "
            f"not {z!r}/{y!r}/{x!r}.",
        )
    return int(z), int(y), int(x)


def _etag(
    layer: VectorLayer,
    version: int,
    explicit: bool,
    properties: tuple[str, ...],
    tile: tuple[int, int, int],
) -> str:
    # A version's rows never change: an explicit version's tiles are named by
    # the layer, the version (and when it was made: a layer deleted and made
    # again restarts at 1) and what was asked. The published version's are
    # also named by the configuration's revision (licence, attributes...).
    made = layer.versions[version].created if version in layer.versions else ""
    parts = [_TILE_SCHEME, layer.slug, layer.table, str(layer.srid), str(version)]
    parts += [made, ",".join(properties), "/".join(map(str, tile))]
    if not explicit:
        parts.append(layer.revision)
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def _matches(etag: str, header: str | None) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def _outside(layer: VectorLayer, tile: tuple[int, int, int]) -> bool:
    """Whether the tile (with its buffer) misses the published version's extent."""
    bounds = _bbox(layer)
    if bounds is None:
        return False
    left, bottom, right, top = tile_bounds(*tile)
    margin = (right - left) * BUFFER / EXTENT
    west, south, east, north = mercator_bounds(bounds)
    return (
        left - margin > east
        or right + margin < west
        or bottom - margin > north
        or top + margin < south
    )


def get_vector_tile(
    api: API,
    request: APIRequest,
    dataset: str,
    matrix_set: str,
    z: str,
    y: str,
    x: str,
) -> Result:
    """``.../tiles/WebMercatorQuad/{z}/{y}/{x}``: a Mapbox Vector Tile (204: empty)."""
    try:
        layer = _layer(api, dataset)
        _check_matrix_set(dataset, matrix_set)
        tile = _tile_numbers(z, y, x)
        if not tile_in_matrix_set(*tile):
            raise _RequestError(
                HTTPStatus.NOT_FOUND,
                "NotFound",
                f"No tile {z}/{y}/{x} in {WEB_MERCATOR_QUAD} (zoom levels 0 to "
                f"{MAX_ZOOM}; rows and columns 0 to 2^zoom - 1).",
            )
        _check_format(request, "mvt")
        version, explicit = _version(layer, request)
        properties = _properties(layer, version, request)
    except _RequestError as err:
        return _error(api, request, err.status, err.code, err.message)
    except VersionError as err:
        return error_result(api, request, err, html=False)
    headers = request.get_response_headers(**api.api_headers)
    headers.pop("Content-Language", None)
    headers.pop("Content-Type", None)
    headers["Cache-Control"] = (
        version_cache_control() if explicit else f"public, max-age={TILE_CACHE_SECONDS}"
    )
    etag = _etag(layer, version, explicit, properties, tile)
    headers["ETag"] = etag
    if _matches(etag, request.headers.get("If-None-Match")):
        return headers, HTTPStatus.NOT_MODIFIED, b""
    if version == layer.version and _outside(layer, tile):
        return headers, HTTPStatus.NO_CONTENT, b""
    try:
        target = TileLayer(
            table=layer.table,
            srid=layer.srid,
            version=version,
            properties=properties,
            name=layer.slug,
            largest=_largest(api, layer, version, tile[0]),
        )
        data = render_vector_tile(target, tile[0], tile[1], tile[2])
    except ProviderGenericError as err:
        return _error(
            api, request, err.http_status_code, err.ogc_exception_code, err.message
        )
    if data is None:
        return headers, HTTPStatus.NO_CONTENT, b""
    headers["Content-Type"] = MVT_MEDIA_TYPE
    return headers, HTTPStatus.OK, data
