"""sdi's own OGC API - Features handlers: items, feature by id, versions, changes.

pygeoapi stays the framework (routes, OpenAPI, conformance, the other pages);
these handlers replace its items pipeline (a provider object per request,
a dict per feature, ``json.dumps`` of the page) for sdi's vector layers,
keeping its response shape, links and OGC exception bodies:

- The GeoJSON of each feature is built by PostgreSQL as text and written out
  as it arrives: small pages in one piece (with a ``Content-Length``), larger
  ones streamed in chunks of rows from the database (``cursor.stream``), so
  memory stays flat however large ``limit`` is.
- Nothing is reflected per request: the layer's table, versions, attributes
  and feature counts come from :func:`sdi.api.layers.vector_layer`.
- ``numberMatched`` is never a ``count(*)`` of the table per page: without a
  filter it is the version's feature count (known); on the last page it is
  ``offset + numberReturned``; otherwise a count that stops after
  :data:`COUNT_CAP` rows (omitted above it), kept per (layer, version,
  filter) in the process, since versions never change.
- ``next`` links pin the version they page through (``version=N``) and, in
  the default order, carry the last row id (``after=``): the next page is an
  index range scan from that id, however deep, and a publication between two
  pages can neither skip nor repeat features. ``offset`` alone still works.
- ``?version=N`` serves any version 1..published. Responses for an explicit
  version: a strong ``ETag`` and ``SDI_VERSION_MAX_AGE`` of public caching
  (:func:`sdi.api.caching.version_cache_control`); the default (published)
  version: a weak ``ETag`` (``timeStamp`` moves) and a minute. The ETags
  include the layer's ``revision``; ``If-None-Match`` answers 304 before any
  database work.
- ``/versions`` lists the versions; ``/changes?from=A&to=B`` is the
  difference between two versions as a FeatureCollection whose features carry
  a ``"change"`` member: ``added``, ``changed`` (the new state) or ``removed``
  (the old state), paged like items.

Collections that are not sdi vector layers (the catalogue's records) and
formats other than GeoJSON and HTML (JSON-LD) go to pygeoapi's own handlers.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import urllib.parse
from collections import ChainMap
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from http import HTTPStatus
from itertools import islice
from typing import Any

import psycopg
import pygeoapi.api.itemtypes as itemtypes_api
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.adapt import Loader
from psycopg_pool import PoolTimeout
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest, validate_bbox
from pygeoapi.crs import DEFAULT_CRS, DEFAULT_CRS_LIST, CrsTransformSpec
from pygeoapi.formats import F_HTML, F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.util import render_j2_template, str2bool

from sdi.api.caching import version_cache_control
from sdi.api.int_params import IntParamError, int_param
from sdi.api.layers import VectorLayer, vector_layer
from sdi.api.memo import BoundedCache
from sdi.api.runtime import Content
from sdi.api.versions import (
    VersionError,
    error_result,
    parse_version,
    requested_version,
)
from sdi.errors import BadInputError
from sdi.providers.cql2 import filter_sql, parse_filter
from sdi.providers.crs import OutputCrs, crs_srid, northing_first, output_crs
from sdi.providers.pool import get_pool
from sdi.providers.sql import (
    FeatureQuery,
    LayerTable,
    Params,
    Statement,
    changes_count_sql,
    changes_sql,
    checkpoints_sql,
    count_sql,
    feature_sql,
    features_sql,
    locate_sql,
    position_sql,
)

__all__ = [
    "COUNT_CAP",
    "get_changes",
    "get_item",
    "get_items",
]

LOGGER = logging.getLogger(__name__)

Result = tuple[dict[str, Any], int, Content]

#: Filtered counts stop here; above it ``numberMatched`` is left out.
COUNT_CAP = 10_000
#: Pages of up to this many features are sent in one piece, with a length.
SMALL_PAGE = 200
#: Rows per chunk of a streamed page.
CHUNK_ROWS = 500
CURRENT = "public, max-age=60"
GEOJSON = "application/geo+json"
_POOL_TIMEOUT_S = 10.0
_COUNTS_MAX = 4096

#: Parameters with a meaning of their own (never property filters).
RESERVED = frozenset(
    {
        "bbox",
        "bbox-crs",
        "crs",
        "f",
        "lang",
        "limit",
        "offset",
        "resulttype",
        "datetime",
        "sortby",
        "properties",
        "skipGeometry",
        "q",
        "filter",
        "filter-lang",
        "filter-crs",
        "version",
        "after",
        "api_key",
    }
)
#: Not carried from a request into its paging links (they set them).
_PAGING = frozenset({"f", "offset", "after", "version"})


class _RequestError(Exception):
    """A request the handler refuses: status, OGC code, message."""

    def __init__(
        self,
        message: str,
        status: int = HTTPStatus.BAD_REQUEST,
        code: str = "InvalidParameterValue",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class _RawText(Loader):
    """Text columns as the bytes PostgreSQL sent (UTF-8): written out as they are."""

    def load(self, data: Any) -> bytes:
        return bytes(data)


# -- shared helpers -----------------------------------------------------------


def _error(
    api: API, request: APIRequest, status: int, code: str, message: str
) -> Result:
    headers = request.get_response_headers(**api.api_headers)
    fmt = F_HTML if request.format == F_HTML else F_JSON
    headers["Content-Type"] = FORMAT_TYPES[fmt]
    return api.get_exception(status, headers, fmt, code, message)  # type: ignore[no-any-return]


def _refuse(api: API, request: APIRequest, exc: _RequestError) -> Result:
    return _error(api, request, exc.status, exc.code, exc.message)


def _int_param(request: APIRequest, name: str, default: int) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int_param(raw, name)
    except IntParamError as exc:
        raise _RequestError(exc.message) from None


def _version(layer: VectorLayer, request: APIRequest) -> tuple[int, bool]:
    """The version asked for (default: the published one) and whether explicit."""
    return requested_version(layer.rules, request.params)


_TABLES: dict[tuple[str, str, int], LayerTable] = {}


def _table(layer: VectorLayer, version: int) -> LayerTable:
    """Version ``version`` of the layer as the SQL builders take it (cached)."""
    key = (layer.table, layer.revision, version)
    found = _TABLES.get(key)
    if found is None:
        fields = layer.fields_of(version)
        found = LayerTable(
            layer.table,
            version,
            layer.srid,
            tuple(fields),
            layer.time_field if layer.time_field in fields else None,
            frozenset(n for n, spec in fields.items() if spec.get("type") == "number"),
        )
        if len(_TABLES) > 1024:
            _TABLES.clear()
        _TABLES[key] = found
    return found


@functools.lru_cache(maxsize=256)
def _output(target: str, storage_crs: str, srid: int) -> OutputCrs:
    spec = CrsTransformSpec(
        source_crs_uri=storage_crs,
        source_crs_wkt="",
        target_crs_uri=target,
        target_crs_wkt="",
        always_xy=False,
    )
    return output_crs(spec, storage_crs, srid)


def _output_crs(layer: VectorLayer, request: APIRequest) -> tuple[OutputCrs, str]:
    """The output CRS for the ``crs`` parameter, and its URI (Content-Crs)."""
    target = request.params.get("crs")
    if not target:
        storage = layer.storage_crs
        target = storage if storage in DEFAULT_CRS_LIST else DEFAULT_CRS
    elif target not in layer.crs:
        raise _RequestError(
            f"CRS {target!r} not supported for this collection. List of "
            f"supported CRSs: {', '.join(layer.crs)}."
        )
    try:
        return _output(target, layer.storage_crs, layer.srid), target
    except ValueError as exc:
        raise _RequestError(str(exc)) from exc


@functools.lru_cache(maxsize=512)
def _gettext(text: str, language: str, locale: Any) -> str:
    return str(l10n.translate(text, locale))


def _text(text: str, locale: Any) -> str:
    """pygeoapi's translation of one of its link titles (cached per language)."""
    return _gettext(text, str(getattr(locale, "language", locale)), locale)


def _limit(api: API, layer: VectorLayer, request: APIRequest) -> int:
    """The page size: pygeoapi's limit rules (RFC5), without its per-call cost."""
    limits = ChainMap(
        layer.resource.get("limits") or {}, api.config["server"].get("limits") or {}
    )
    default = int(limits.get("default_items", 10))
    maximum = int(limits.get("max_items", 10))
    raw = request.params.get("limit")
    if raw is None:
        return default
    try:
        value = int_param(raw, "limit", minimum=1)
    except IntParamError as exc:
        raise _RequestError(exc.message) from None
    if value > maximum and limits.get("on_exceed", "throttle") == "error":
        raise _RequestError(f"Limit of {maximum} exceeded")
    return min(value, maximum)


def _request_format(request: APIRequest) -> str:
    """``json``, ``html`` or what pygeoapi serves for us (``jsonld`` ...)."""
    fmt = request.format
    if fmt is None or fmt == F_JSON:
        return str(F_JSON)
    return str(fmt)


def _etag(layer: VectorLayer, version: int, explicit: bool, *parts: Any) -> str:
    key = "|".join(str(p) for p in (layer.revision, layer.table, version, *parts))
    digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return f'"{digest}"' if explicit else f'W/"{digest}"'


def _not_modified(request: APIRequest, etag: str) -> bool:
    wanted = request.headers.get("If-None-Match")
    if not wanted:
        return False
    ours = etag.removeprefix("W/")
    for tag in wanted.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == ours:
            return True
    return False


def _cache_headers(
    headers: dict[str, Any], request: APIRequest, etag: str, explicit: bool
) -> Result | None:
    """Set ETag and Cache-Control; the 304 answer when the client has it."""
    headers["ETag"] = etag
    headers["Cache-Control"] = version_cache_control() if explicit else CURRENT
    headers["Vary"] = "Accept, Accept-Language"
    if _not_modified(request, etag):
        headers.pop("Content-Type", None)
        return headers, HTTPStatus.NOT_MODIFIED, b""
    return None


def _canonical_query(request: APIRequest) -> str:
    return urllib.parse.urlencode(sorted(request.params.items()))


def _serialised(params: Any, skip: frozenset[str]) -> str:
    """``&k=v`` for the request's parameters, as pygeoapi writes them in links."""
    return "".join(
        f"&{urllib.parse.quote(k, safe='')}={urllib.parse.quote(str(v), safe=',')}"
        for k, v in params.items()
        if k not in skip
    )


def _db_error(table: str, exc: BaseException) -> _RequestError:
    """A database failure as the client should hear it."""
    if isinstance(exc, PoolTimeout):
        LOGGER.error("no database connection for %s: %s", table, exc)
        return _RequestError(
            "The database is not reachable right now; try again shortly.",
            HTTPStatus.SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
        )
    if isinstance(exc, pg_errors.DataError):
        # A request value the column's type refuses (FLOORS=abc, a bad date).
        detail = exc.diag.message_primary or str(exc)
        return _RequestError(f"A parameter value does not fit the attribute: {detail}")
    if isinstance(exc, pg_errors.UndefinedTable):
        LOGGER.error("layer table sdi_data.%s is missing", table)
        return _RequestError(
            "This collection's data is missing; the administrators have been told.",
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "NoApplicableCode",
        )
    if isinstance(exc, psycopg.OperationalError):
        LOGGER.error("database unreachable: %s", exc)
        return _RequestError(
            "The database is not reachable right now; try again shortly.",
            HTTPStatus.SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
        )
    LOGGER.error("query on sdi_data.%s failed: %s", table, exc)
    return _RequestError(
        "Error querying the data.", HTTPStatus.INTERNAL_SERVER_ERROR, "NoApplicableCode"
    )


def _fetch(table: str, statement: Statement, params: Params) -> list[Any]:
    try:
        with get_pool().connection(timeout=_POOL_TIMEOUT_S) as conn:
            cur = conn.cursor()
            cur.adapters.register_loader("text", _RawText)
            return cur.execute(statement, params).fetchall()
    except (psycopg.Error, PoolTimeout) as exc:
        raise _db_error(table, exc) from exc


# -- deep offsets -------------------------------------------------------------

#: Row ids at every this many rows of a version are kept (:func:`_checkpoints`).
_CHECKPOINT_STEP = 1000
#: Shallower offsets are read with OFFSET directly (a few thousand rows).
_CHECKPOINT_FROM = 5000
_CHECKPOINTS: BoundedCache[tuple[str, int], list[int]] = BoundedCache(64)


def _checkpoints(table: LayerTable) -> list[int]:
    """The ids at positions 0, step, 2*step, ... of a version, read once.

    Versions never change, so a few hundred ids per 100,000 features turn
    any deep offset into a range scan of at most ``_CHECKPOINT_STEP`` rows.
    """
    key = (table.table, table.version)
    found = _CHECKPOINTS.get(key)
    if found is not None:
        return found
    statement, params = checkpoints_sql(table, _CHECKPOINT_STEP)
    ids = [int(row[0]) for row in _fetch(table.table, statement, params)]
    _CHECKPOINTS.put(key, ids)
    return ids


def _deep_position(table: LayerTable, offset: int) -> int | None:
    """The row id the page at ``offset`` starts after (unfiltered, id order).

    None past the end of the version (the page is then read by OFFSET: empty).
    """
    points = _checkpoints(table)
    index, skip = divmod(offset, _CHECKPOINT_STEP)
    if index >= len(points):
        return None
    statement, params = position_sql(table, points[index], skip)
    rows = _fetch(table.table, statement, params)
    return int(rows[0][0]) - 1 if rows else None


# -- counts -----------------------------------------------------------------

#: (count key) -> matching features; None: more than the cap.
_COUNTS: BoundedCache[tuple[Any, ...], int | None] = BoundedCache(_COUNTS_MAX)


def _count(
    conn: psycopg.Connection[Any],
    table: LayerTable,
    query: FeatureQuery,
    key: tuple[Any, ...],
    cap: int | None,
) -> int | None:
    """Matching features (None: more than ``cap``), cached per version and filter."""
    found, value = _COUNTS.lookup(key)
    if found and (value is not None or cap is not None):
        return value
    statement, params = count_sql(table, query, cap=cap)
    row = conn.execute(statement, params).fetchone()
    total = int(row[0]) if row else 0
    result = None if cap is not None and total > cap else total
    _COUNTS.put(key, result)
    return result


# -- offsets as row ids -------------------------------------------------------

#: (count key, offset) -> the row id the page at that offset starts after, in
#: the default order. Versions never change, so a position seen once holds:
#: deep offsets (and clients that page by offset) become index range scans.
_POSITIONS: BoundedCache[tuple[Any, ...], int] = BoundedCache(_COUNTS_MAX)


# -- the body of a page -----------------------------------------------------


class _Page:
    """Rows of a page from the database: the first chunk at once, then the rest.

    The first chunk is read before the response starts, so errors in the
    statement are still 400/500 answers; the rest is streamed. The
    connection returns to the pool when the body is done or closed.
    """

    def __init__(
        self, table: str, statement: Statement, params: Params, limit: int
    ) -> None:
        self._cm: AbstractContextManager[psycopg.Connection[Any]] | None = (
            get_pool().connection(timeout=_POOL_TIMEOUT_S)
        )
        self._rows: Iterator[Any] | None = None
        self.conn: psycopg.Connection[Any] | None = None
        try:
            self.conn = self._cm.__enter__() if self._cm is not None else None
            assert self.conn is not None
            cur = self.conn.cursor()
            cur.adapters.register_loader("text", _RawText)
            if limit <= SMALL_PAGE:
                self.first: list[Any] = cur.execute(statement, params).fetchall()
            else:
                self._rows = cur.stream(statement, params, size=CHUNK_ROWS)
                self.first = list(islice(self._rows, CHUNK_ROWS))
        except BaseException as exc:
            self.close(exc)
            if isinstance(exc, psycopg.Error | PoolTimeout):
                raise _db_error(table, exc) from exc
            raise

    def chunks(self) -> Iterator[list[Any]]:
        """The rows: the first chunk, then the streamed ones."""
        yield self.first
        if self._rows is not None:
            while batch := list(islice(self._rows, CHUNK_ROWS)):
                yield batch

    def close(self, exc: BaseException | None = None) -> None:
        """Give the connection back (idempotent)."""
        rows, self._rows = self._rows, None
        cm, self._cm, self.conn = self._cm, None, None
        try:
            if rows is not None and hasattr(rows, "close"):
                rows.close()
        finally:
            if cm is not None:
                if exc is None:
                    cm.__exit__(None, None, None)
                else:
                    cm.__exit__(type(exc), exc, exc.__traceback__)


class _Body:
    """The response body of a page: head, features as they come, tail.

    An iterator with ``close()``: the WSGI server calls it whether or not the
    body was read to the end, and the connection goes back to the pool.
    """

    def __init__(
        self,
        page: _Page,
        limit: int,
        head: bytes,
        tail: Callable[[psycopg.Connection[Any] | None, int, int | None], bytes],
    ) -> None:
        self._page = page
        self._parts = self._generate(limit, head, tail)

    def _generate(
        self,
        limit: int,
        head: bytes,
        tail: Callable[[psycopg.Connection[Any] | None, int, int | None], bytes],
    ) -> Generator[bytes]:
        returned = 0
        last: int | None = None
        more = False
        prefix = head
        for batch in self._page.chunks():
            if returned + len(batch) > limit:
                batch = batch[: limit - returned]
                more = True
            if batch:
                returned += len(batch)
                last = batch[-1][0]
                yield prefix + b",".join(row[1] for row in batch)
                prefix = b","
            if more:
                break
        if prefix is head:
            yield head
        yield tail(self._page.conn, returned, last if more else None)
        self._page.close()

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        return next(self._parts)

    def close(self) -> None:
        """Release the database connection."""
        try:
            self._parts.close()
        finally:
            self._page.close()


def _whole(body: _Body) -> bytes:
    try:
        return b"".join(body)
    finally:
        body.close()


# -- items ------------------------------------------------------------------


def _bbox(layer: VectorLayer, request: APIRequest, query: FeatureQuery) -> None:
    raw = request.params.get("bbox")
    bbox_crs = request.params.get("bbox-crs")
    if raw is None:
        if bbox_crs is not None:
            raise _RequestError("bbox-crs specified without bbox parameter")
        return
    try:
        values = validate_bbox(raw)
    except ValueError as exc:
        raise _RequestError(str(exc)) from exc
    if not all(math.isfinite(v) for v in values):
        raise _RequestError("bbox values must be finite numbers")
    if bbox_crs is None:
        bbox_crs = DEFAULT_CRS
    elif bbox_crs not in layer.crs and bbox_crs not in DEFAULT_CRS_LIST:
        raise _RequestError(f"bbox-crs {bbox_crs} not supported for this collection")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    minx, miny, maxx, maxy = values
    try:
        srid = crs_srid(bbox_crs)
        if northing_first(bbox_crs):
            minx, miny, maxx, maxy = miny, minx, maxy, maxx
    except ValueError as exc:
        raise _RequestError(str(exc)) from exc
    if miny > maxy:
        raise _RequestError("miny should be less than maxy")
    query.envelope_srid = srid
    if minx > maxx:
        if srid != 4326:
            raise _RequestError("minx is greater than maxx")
        # Across the antimeridian: two boxes.
        query.envelopes = [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    else:
        query.envelopes = [(minx, miny, maxx, maxy)]


def _check_time(value: str) -> str | None:
    if value in ("", ".."):
        return None
    try:
        dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise _RequestError(
            f"datetime {value!r} is not an RFC 3339 date or date-time "
            "(e.g. 2024-01-31 or 2024-01-31T08:00:00Z)."
        ) from None
    return value


def _datetime(
    layer: VectorLayer, table: LayerTable, value: str, q: FeatureQuery
) -> None:
    if table.time_field is None:
        raise _RequestError("This collection has no time attribute to filter on.")
    if "/" in value:
        start, _, end = value.partition("/")
        q.time_range = (_check_time(start), _check_time(end))
    else:
        q.time_instant = _check_time(value)
        if q.time_instant is None:
            raise _RequestError(
                "datetime '..' is only allowed as an end of an interval."
            )


def _filter(
    layer: VectorLayer,
    request: APIRequest,
    fields: dict[str, dict[str, Any]],
    query: FeatureQuery,
) -> None:
    text = request.params.get("filter")
    lang = request.params.get("filter-lang") or None
    crs = request.params.get("filter-crs") or None
    if text is None:
        if lang is not None or crs is not None:
            raise _RequestError("filter-lang and filter-crs need a filter parameter.")
        return
    if crs is not None and crs not in layer.crs and crs not in DEFAULT_CRS_LIST:
        raise _RequestError(f"filter-crs {crs} not supported for this collection")
    try:
        node = parse_filter(text, lang)
        filter_srid = crs_srid(crs) if crs else 4326
        flip = northing_first(crs) if crs else False
    except (BadInputError, ValueError) as exc:
        raise _RequestError(str(getattr(exc, "message", exc))) from exc
    srid = layer.srid

    def condition(params: Params) -> sql.Composable:
        return filter_sql(
            node,
            fields=fields,
            srid=srid,
            params=params,
            filter_srid=filter_srid,
            flip=flip,
        )

    query.condition = condition


def _items_query(
    api: API,
    layer: VectorLayer,
    table: LayerTable,
    request: APIRequest,
    output: OutputCrs,
) -> FeatureQuery:
    params = request.params
    offset = _int_param(request, "offset", 0)
    limit = _limit(api, layer, request)
    query = FeatureQuery(output=output, offset=offset, limit=limit)
    fields = layer.fields_of(table.version)
    _bbox(layer, request, query)
    value = params.get("datetime")
    if value:
        _datetime(layer, table, value, query)
    for name, raw in params.items():
        if name not in RESERVED and name in fields:
            query.equals.append((name, str(raw)))
    sortby = params.get("sortby")
    if sortby:
        for key in sortby.split(","):
            name, desc = key, False
            if key[:1] in ("+", "-"):
                name, desc = key[1:], key[0] == "-"
            if name not in fields:
                raise _RequestError("bad sortby property")
            query.sortby.append((name, desc))
    selected = params.get("properties")
    if selected is not None:
        wanted = {n for n in selected.split(",") if n}
        if wanted - set(fields):
            raise _RequestError("unknown properties specified")
        query.select = tuple(n for n in table.fields if n in wanted)
    skip = params.get("skipGeometry")
    if skip is not None:
        query.skip_geometry = str2bool(skip)
    after = params.get("after")
    if after:
        if query.sortby:
            raise _RequestError(
                "after (a row id cursor) cannot be combined with sortby."
            )
        query.after = _int_param(request, "after", 0)
    _filter(layer, request, fields, query)
    return query


def _count_key(
    table: LayerTable, layer: VectorLayer, request: APIRequest
) -> tuple[Any, ...]:
    params = request.params
    equals = tuple(sorted((k, str(v)) for k, v in params.items() if k not in RESERVED))
    return (
        table.table,
        table.version,
        layer.versions[table.version].created,
        params.get("bbox"),
        params.get("bbox-crs"),
        params.get("datetime"),
        params.get("filter"),
        params.get("filter-lang"),
        params.get("filter-crs"),
        equals,
    )


def _known_total(
    layer: VectorLayer, table: LayerTable, query: FeatureQuery
) -> int | None:
    if query.filtered:
        return None
    entry = layer.versions[table.version]
    return entry.features if entry.created else None


def _items_links(
    api: API,
    layer: VectorLayer,
    request: APIRequest,
    dataset: str,
    version: int,
    query: FeatureQuery,
    returned: int,
    next_after: int | None,
    more: bool,
) -> list[dict[str, Any]]:
    uri = f"{api.get_collections_url()}/{dataset}/items"
    locale = request.locale
    params = request.params
    kept = _serialised(params, frozenset({"f"}))
    links: list[dict[str, Any]] = [
        {
            "type": GEOJSON,
            "rel": request.get_linkrel(F_JSON),
            "title": _text("This document as GeoJSON", locale),
            "href": f"{uri}?f={F_JSON}{kept}",
        },
        {
            "rel": request.get_linkrel(F_JSONLD),
            "type": FORMAT_TYPES[F_JSONLD],
            "title": _text("This document as RDF (JSON-LD)", locale),
            "href": f"{uri}?f={F_JSONLD}{kept}",
        },
        {
            "type": FORMAT_TYPES[F_HTML],
            "rel": request.get_linkrel(F_HTML),
            "title": _text("This document as HTML", locale),
            "href": f"{uri}?f={F_HTML}{kept}",
        },
    ]
    paging = _serialised(params, _PAGING) + f"&version={version}"
    fmt = f"f={request.format}&" if request.format is not None else ""
    if query.offset > 0:
        prev = max(0, query.offset - query.limit)
        links.append(
            {
                "type": GEOJSON,
                "rel": "prev",
                "title": _text("Items (prev)", locale),
                "href": f"{uri}?{fmt}offset={prev}{paging}",
            }
        )
    if more:
        cursor = f"&after={next_after}" if next_after is not None else ""
        links.append(
            {
                "type": GEOJSON,
                "rel": "next",
                "title": _text("Items (next)", locale),
                "href": f"{uri}?{fmt}offset={query.offset + returned}{cursor}{paging}",
            }
        )
    links.append(
        {
            "type": FORMAT_TYPES[F_JSON],
            "title": l10n.translate(layer.title, locale),
            "rel": "collection",
            "href": f"{api.get_collections_url()}/{dataset}",
        }
    )
    links.extend(layer.licence_links)
    return links


def _timestamp(layer: VectorLayer, version: int, explicit: bool) -> str:
    if explicit and layer.versions[version].created:
        # A fixed time for a fixed version: the response never changes.
        created = dt.datetime.fromisoformat(layer.versions[version].created)
        return created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _other_versions_refused(
    api: API, request: APIRequest, layer: VectorLayer | None
) -> Result | None:
    """A 400 when a format pygeoapi serves (JSON-LD) is asked for an old version.

    pygeoapi's own handlers serve the published version only.
    """
    if layer is None or request.params.get("version") in (
        None,
        "",
        str(layer.version),
    ):
        return None
    return _error(
        api,
        request,
        HTTPStatus.BAD_REQUEST,
        "InvalidParameterValue",
        "version is only supported for GeoJSON and HTML responses.",
    )


def get_items(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/items``: a page of features (GeoJSON or HTML)."""
    layer = vector_layer(api, dataset)
    fmt = _request_format(request)
    if layer is None or fmt not in (F_JSON, F_HTML):
        refused = _other_versions_refused(api, request, layer)
        if refused is not None:
            return refused
        return itemtypes_api.get_collection_items(api, request, dataset)  # type: ignore[no-any-return]
    try:
        return _items(api, request, dataset, layer, fmt)
    except _RequestError as exc:
        return _refuse(api, request, exc)
    except VersionError as exc:
        return error_result(api, request, exc)


def _items(
    api: API, request: APIRequest, dataset: str, layer: VectorLayer, fmt: str
) -> Result:
    version, explicit = _version(layer, request)
    table = _table(layer, version)
    output, crs_uri = _output_crs(layer, request)
    query = _items_query(api, layer, table, request, output)
    resulttype = request.params.get("resulttype") or "results"
    if resulttype not in ("results", "hits"):
        raise _RequestError("resulttype must be 'results' or 'hits'.")

    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_HTML] if fmt == F_HTML else GEOJSON
    headers["Content-Crs"] = f"<{crs_uri}>"
    etag = _etag(
        layer,
        version,
        explicit,
        "items",
        fmt,
        request.locale,
        _canonical_query(request),
    )
    cached = _cache_headers(headers, request, etag, explicit)
    if cached is not None:
        return cached

    count_key = _count_key(table, layer, request)
    known = _known_total(layer, table, query)
    if resulttype == "hits":
        total = known
        if total is None:
            total = _exact_count(table, query, count_key)
        hits: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [],
            "numberMatched": total,
            "numberReturned": 0,
            "links": _items_links(
                api, layer, request, dataset, version, query, 0, None, False
            ),
            "timeStamp": _timestamp(layer, version, explicit),
        }
        if fmt == F_HTML:
            return (
                headers,
                HTTPStatus.OK,
                _render_items(api, request, dataset, layer, hits, query),
            )
        return headers, HTTPStatus.OK, _dumps(hits)

    keyset = not query.sortby and query.after is None
    if keyset and query.offset > 0:
        # A page seen before, by offset: start from its first row's id.
        query.after = _POSITIONS.get((count_key, query.offset))
        if (
            query.after is None
            and not query.filtered
            and query.offset >= _CHECKPOINT_FROM
        ):
            query.after = _deep_position(table, query.offset)
            if query.after is not None:
                _POSITIONS.put((count_key, query.offset), query.after)
    try:
        statement, params = features_sql(table, query, extra=1)
    except BadInputError as exc:
        raise _RequestError(exc.message) from exc
    except ValueError as exc:
        raise _RequestError(str(exc)) from exc
    page = _Page(layer.table, statement, params, query.limit + 1)
    if keyset and query.after is None and query.offset > 0 and page.first:
        _POSITIONS.put((count_key, query.offset), int(page.first[0][0]) - 1)

    def tail(
        conn: psycopg.Connection[Any] | None, returned: int, next_after: int | None
    ) -> bytes:
        more = next_after is not None
        if keyset and next_after is not None:
            _POSITIONS.put((count_key, query.offset + returned), next_after)
        matched = known
        if matched is None:
            if not more and (returned > 0 or query.offset == 0):
                matched = query.offset + returned  # the last page
            elif conn is not None:
                try:
                    matched = _count(conn, table, query, count_key, COUNT_CAP)
                except psycopg.Error as exc:  # the page is out; leave the total out
                    LOGGER.warning("count on %s failed: %s", table.table, exc)
        links = _items_links(
            api,
            layer,
            request,
            dataset,
            version,
            query,
            returned,
            next_after if query.sortby == [] else None,
            more,
        )
        # The keyset cursor only in the default order (sortby pages by offset).
        parts = [b"]"]
        if matched is not None:
            parts.append(b',"numberMatched":%d' % matched)
        parts.append(b',"numberReturned":%d' % returned)
        parts.append(b',"links":' + _dumps(links))
        parts.append(
            b',"timeStamp":"' + _timestamp(layer, version, explicit).encode() + b'"}'
        )
        return b"".join(parts)

    body = _Body(page, query.limit, b'{"type":"FeatureCollection","features":[', tail)
    if fmt == F_HTML:
        content = json.loads(_whole(body))
        return (
            headers,
            HTTPStatus.OK,
            _render_items(api, request, dataset, layer, content, query),
        )
    if query.limit + 1 <= SMALL_PAGE:
        return headers, HTTPStatus.OK, _whole(body)
    return headers, HTTPStatus.OK, body


def _exact_count(table: LayerTable, query: FeatureQuery, key: tuple[Any, ...]) -> int:
    try:
        with get_pool().connection(timeout=_POOL_TIMEOUT_S) as conn:
            total = _count(conn, table, query, key, None)
    except (psycopg.Error, PoolTimeout) as exc:
        raise _db_error(table.table, exc) from exc
    except BadInputError as exc:
        raise _RequestError(exc.message) from exc
    return total or 0


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _render_items(
    api: API,
    request: APIRequest,
    dataset: str,
    layer: VectorLayer,
    content: dict[str, Any],
    query: FeatureQuery,
) -> str:
    uri = f"{api.get_collections_url()}/{dataset}/items"
    content["itemtype"] = "feature"
    content["items_path"] = uri
    content["dataset_path"] = f"{api.get_collections_url()}/{dataset}"
    content["collections_path"] = api.get_collections_url()
    content["offset"] = query.offset
    content["id_field"] = "_sdi_fid"
    if layer.title_field is not None:
        content["title_field"] = layer.title_field
        content["id_field"] = layer.title_field
    return render_j2_template(  # type: ignore[no-any-return]
        api.tpl_config,
        api.get_dataset_templates(dataset),
        "collections/items/index.html",
        content,
        request.locale,
    )


# -- one feature --------------------------------------------------------------


def get_item(api: API, request: APIRequest, dataset: str, identifier: str) -> Result:
    """``/collections/{dataset}/items/{identifier}``: one feature."""
    layer = vector_layer(api, dataset)
    fmt = _request_format(request)
    if layer is None or fmt not in (F_JSON, F_HTML):
        refused = _other_versions_refused(api, request, layer)
        if refused is not None:
            return refused
        return itemtypes_api.get_collection_item(api, request, dataset, identifier)  # type: ignore[no-any-return]
    try:
        return _item(api, request, dataset, layer, fmt, identifier)
    except _RequestError as exc:
        return _refuse(api, request, exc)
    except VersionError as exc:
        return error_result(api, request, exc)


def _item(
    api: API,
    request: APIRequest,
    dataset: str,
    layer: VectorLayer,
    fmt: str,
    identifier: str,
) -> Result:
    version, explicit = _version(layer, request)
    table = _table(layer, version)
    output, crs_uri = _output_crs(layer, request)
    if not identifier.isascii() or not identifier.isdigit() or len(identifier) > 18:
        raise _RequestError(
            f"No feature {identifier!r} in collection {dataset!r}.",
            HTTPStatus.NOT_FOUND,
            "NotFound",
        )
    fid = int(identifier)
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_HTML] if fmt == F_HTML else GEOJSON
    headers["Content-Crs"] = f"<{crs_uri}>"
    etag = _etag(layer, version, explicit, "item", fid, fmt, request.locale, crs_uri)
    cached = _cache_headers(headers, request, etag, explicit)
    if cached is not None:
        return cached
    statement, params = feature_sql(table, fid, output)
    rows = _fetch(layer.table, statement, params)
    if not rows:
        raise _RequestError(
            _missing(layer, table, fid, explicit),
            HTTPStatus.NOT_FOUND,
            "NotFound",
        )
    feature: bytes = rows[0][0]
    if fmt != F_HTML:
        links_json = _item_links_json(
            api, layer, request, dataset, identifier, version, explicit
        )
        return headers, HTTPStatus.OK, feature[:-1] + b',"links":' + links_json + b"}"
    links = _item_links(api, layer, request, dataset, identifier, version, explicit)
    content = json.loads(feature)
    content["links"] = links
    content["title"] = l10n.translate(layer.title, request.locale)
    content["id_field"] = "_sdi_fid"
    if layer.title_field is not None:
        content["title_field"] = layer.title_field
    content["collections_path"] = api.get_collections_url()
    html = render_j2_template(
        api.tpl_config,
        api.get_dataset_templates(dataset),
        "collections/items/item.html",
        content,
        request.locale,
    )
    return headers, HTTPStatus.OK, html


def _missing(layer: VectorLayer, table: LayerTable, fid: int, explicit: bool) -> str:
    which = f"version {table.version}" + ("" if explicit else " (the published one)")
    message = f"No feature {fid} in {which} of collection {layer.slug!r}."
    try:
        statement, params = locate_sql(table, fid)
        rows = _fetch(layer.table, statement, params)
    except _RequestError:
        return message
    if rows:
        first, end = int(rows[0][0]), rows[0][1]
        last = layer.version if end is None else min(int(end) - 1, layer.version)
        held = [n for n in layer.versions if first <= n <= last]  # withdrawn: gaps
        if held:
            first, last = held[0], held[-1]
            span = f"version {first}" if first == last else f"versions {first}-{last}"
            message += f" It is in {span}: add ?version={last}."
    return message


#: Stands for the feature id in cached link lists (ids are ASCII digits).
_ID_MARK = "@@sdi-id@@"
#: Serialised feature links by everything they depend on but the id.
_ITEM_LINKS: BoundedCache[tuple[Any, ...], bytes] = BoundedCache(1024)


def _item_links_json(
    api: API,
    layer: VectorLayer,
    request: APIRequest,
    dataset: str,
    identifier: str,
    version: int,
    explicit: bool,
) -> bytes:
    """:func:`_item_links` as JSON, built once per layer version and language.

    The feature-by-id route is hot; only the id differs between its links.
    """
    # The revision covers the title and licence links; the base URL the rest.
    key = (api.base_url, dataset, layer.revision, version, explicit,
           str(request.locale), request.format)  # fmt: skip
    cached = _ITEM_LINKS.get(key)
    if cached is None:
        links = _item_links(api, layer, request, dataset, _ID_MARK, version, explicit)
        cached = _dumps(links)
        _ITEM_LINKS.put(key, cached)
    return cached.replace(_ID_MARK.encode(), identifier.encode())


def _item_links(
    api: API,
    layer: VectorLayer,
    request: APIRequest,
    dataset: str,
    identifier: str,
    version: int,
    explicit: bool,
) -> list[dict[str, Any]]:
    locale = request.locale
    uri = f"{api.get_collections_url()}/{dataset}/items/{identifier}"
    extra = f"&version={version}" if explicit else ""
    return [
        {
            "type": FORMAT_TYPES[F_JSON],
            "rel": "root",
            "title": _text("The landing page of this server as JSON", locale),
            "href": f"{api.base_url}?f={F_JSON}",
        },
        {
            "type": FORMAT_TYPES[F_HTML],
            "rel": "root",
            "title": _text("The landing page of this server as HTML", locale),
            "href": f"{api.base_url}?f={F_HTML}",
        },
        {
            "rel": request.get_linkrel(F_JSON),
            "type": GEOJSON,
            "title": _text("This document as JSON", locale),
            "href": f"{uri}?f={F_JSON}{extra}",
        },
        {
            "rel": request.get_linkrel(F_JSONLD),
            "type": FORMAT_TYPES[F_JSONLD],
            "title": _text("This document as RDF (JSON-LD)", locale),
            "href": f"{uri}?f={F_JSONLD}{extra}",
        },
        {
            "rel": request.get_linkrel(F_HTML),
            "type": FORMAT_TYPES[F_HTML],
            "title": _text("This document as HTML", locale),
            "href": f"{uri}?f={F_HTML}{extra}",
        },
        {
            "rel": "collection",
            "type": FORMAT_TYPES[F_JSON],
            "title": l10n.translate(layer.title, locale),
            "href": f"{api.get_collections_url()}/{dataset}",
        },
        *layer.licence_links,
    ]


# -- versions and changes -----------------------------------------------------


def _layer_or_404(api: API, dataset: str) -> VectorLayer:
    layer = vector_layer(api, dataset)
    if layer is None:
        raise _RequestError(
            f"Collection {dataset!r} has no versions.", HTTPStatus.NOT_FOUND, "NotFound"
        )
    return layer


def _change_version(
    layer: VectorLayer, request: APIRequest, name: str, default: int
) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    return parse_version(layer.rules, raw, name=name, zero=True)


def get_changes(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/changes?from=A&to=B``: what changed, as features."""
    try:
        layer = _layer_or_404(api, dataset)
        return _changes(api, request, dataset, layer)
    except _RequestError as exc:
        return _refuse(api, request, exc)
    except VersionError as exc:
        return error_result(api, request, exc, html=False)


def _changes(api: API, request: APIRequest, dataset: str, layer: VectorLayer) -> Result:
    explicit = bool(request.params.get("to"))
    new_v = _change_version(layer, request, "to", layer.version)
    # By default the served version before ``to`` (withdrawn ones are gaps).
    before = max((n for n in layer.versions if n < new_v), default=0)
    old_v = _change_version(layer, request, "from", before)
    output, crs_uri = _output_crs(layer, request)
    offset = _int_param(request, "offset", 0)
    limit = _limit(api, layer, request)
    old_t = (
        _table(layer, old_v) if old_v else LayerTable(layer.table, 0, layer.srid, ())
    )
    new_t = (
        _table(layer, new_v) if new_v else LayerTable(layer.table, 0, layer.srid, ())
    )
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = GEOJSON
    headers["Content-Crs"] = f"<{crs_uri}>"
    etag = _etag(layer, new_v, explicit, "changes", old_v, _canonical_query(request))
    cached = _cache_headers(headers, request, etag, explicit)
    if cached is not None:
        return cached
    summary = _change_summary(layer, old_t, new_t)
    total = sum(summary.values())
    base = f"{api.get_collections_url()}/{dataset}"
    uri = f"{base}/changes"
    statement, params = changes_sql(
        old_t, new_t, output, offset=offset, limit=limit + 1
    )
    page = _Page(layer.table, statement, params, limit + 1)

    def tail(
        conn: psycopg.Connection[Any] | None, returned: int, next_after: int | None
    ) -> bytes:
        links = _change_links(
            request, uri, base, layer, offset, limit, returned, next_after is not None
        )
        return (
            b'],"numberMatched":%d,"numberReturned":%d,"changes":' % (total, returned)
            + _dumps(summary)
            + b',"links":'
            + _dumps(links)
            + b"}"
        )

    body = _Body(page, limit, b'{"type":"FeatureCollection","features":[', tail)
    if limit + 1 <= SMALL_PAGE:
        return headers, HTTPStatus.OK, _whole(body)
    return headers, HTTPStatus.OK, body


_SUMMARIES: BoundedCache[tuple[Any, ...], dict[str, int]] = BoundedCache(_COUNTS_MAX)


def _change_summary(
    layer: VectorLayer, old: LayerTable, new: LayerTable
) -> dict[str, int]:
    """How many features were added, changed, removed (cached: versions are fixed)."""
    if old.version == new.version:
        return {"added": 0, "changed": 0, "removed": 0}
    newest = layer.versions[max(old.version, new.version)].created
    key = (layer.table, old.version, new.version, newest)
    summary = _SUMMARIES.get(key)
    if summary is None:
        statement, params = changes_count_sql(old, new)
        row = _fetch(layer.table, statement, params)[0]
        summary = {"added": int(row[0]), "changed": int(row[1]), "removed": int(row[2])}
        _SUMMARIES.put(key, summary)
    return dict(summary)


def _change_links(
    request: APIRequest,
    uri: str,
    base: str,
    layer: VectorLayer,
    offset: int,
    limit: int,
    returned: int,
    more: bool,
) -> list[dict[str, Any]]:
    kept = _serialised(request.params, frozenset({"f"}))
    paging = _serialised(request.params, frozenset({"f", "offset"}))
    links: list[dict[str, Any]] = [
        {
            "rel": "self",
            "type": GEOJSON,
            "title": "This document as GeoJSON",
            "href": f"{uri}?f={F_JSON}{kept}",
        }
    ]
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": GEOJSON,
                "title": "Changes (prev)",
                "href": f"{uri}?offset={max(0, offset - limit)}{paging}",
            }
        )
    if more:
        links.append(
            {
                "rel": "next",
                "type": GEOJSON,
                "title": "Changes (next)",
                "href": f"{uri}?offset={offset + returned}{paging}",
            }
        )
    links.append(
        {
            "rel": "collection",
            "type": FORMAT_TYPES[F_JSON],
            "title": l10n.translate(layer.title, request.locale),
            "href": base,
        }
    )
    links.extend(layer.licence_links)
    return links
