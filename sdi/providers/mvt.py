"""Mapbox Vector Tiles of one version of a layer table, in WebMercatorQuad.

One statement per tile, built by PostGIS (``ST_AsMVTGeom`` + ``ST_AsMVT``):

* **Candidates** come from the GIST index on ``_sdi_geom``: ``&&`` with the
  tile's envelope (plus the 64-unit buffer) expressed in the storage CRS, so
  no stored geometry is transformed just to be rejected. Tile coordinates are
  bound parameters; every function of them is immutable, so PostgreSQL folds
  them to constants once per statement (statements are never prepared: a
  generic plan would evaluate them per row).
* **Below** :data:`EXACT_ZOOM`, features smaller than one pixel of the tile
  drawn 512 px wide (its bounding box narrower *and* lower than
  ``tile / 512``) are left out: they would not be visible, and at low zoom
  levels they are most of the work. When the caller knows the version's
  largest feature (:func:`largest_feature`) and it is smaller than the
  tile's pixel, the tile is empty without a query. Lines and polygons are simplified
  (``ST_Simplify``, Douglas-Peucker, collapsed rings kept) with a tolerance of
  that pixel in the storage CRS, before any transformation, so fewer vertices
  are transformed and encoded. From :data:`EXACT_ZOOM` (the tile set's
  ``maxTileMatrix``, from which clients over-zoom) nothing is dropped or
  simplified beyond ``ST_AsMVTGeom``'s snapping to the 4096-unit grid.
* **No reprojection** for longitude/latitude storage (SRID 4326) from zoom
  :data:`LINEAR_ZOOM` on: ``ST_AsMVTGeom`` maps the tile's bounds linearly to
  the grid, which is exact for longitude and, for latitude, off by less than
  ``1608 / 2**z`` grid units (0.2 at zoom 13, 0.05 at 15) against the Mercator
  formula: below the grid's own rounding. It saves one ``ST_Transform`` per
  feature, a third of a dense tile's cost. Elsewhere geometries are
  transformed to EPSG:3857 and clipped there.
* **Attributes**: only the columns asked for; the MVT feature id is
  ``_sdi_fid``. The MVT layer is named after the collection.

Statements run in a transaction with JIT and parallel workers off: PostGIS'
function costs make the planner JIT-compile and fan out every tile query,
which costs more than it saves (30 ms of JIT on a 150 ms tile) and takes
cores other requests need.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import PoolTimeout
from pygeoapi.provider.base import ProviderGenericError, ProviderQueryError

from sdi.providers.features import ProviderUnavailableError
from sdi.providers.pool import get_pool
from sdi.providers.sql import in_version

__all__ = [
    "BUFFER",
    "EXACT_ZOOM",
    "EXTENT",
    "LINEAR_ZOOM",
    "MAX_ZOOM",
    "MVT_MEDIA_TYPE",
    "TileLayer",
    "geometry_type",
    "largest_feature",
    "render_vector_tile",
    "tile_in_matrix_set",
    "tile_sql",
]

LOGGER = logging.getLogger(__name__)

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Grid units across a tile (the MVT default).
EXTENT = 4096
#: Grid units kept around the tile so that lines and outlines join seamlessly.
BUFFER = 64
#: Deepest tile matrix of WebMercatorQuad served.
MAX_ZOOM = 24
#: From this zoom level on, every feature is in its tiles, unsimplified.
EXACT_ZOOM = 16
#: From this zoom level on, longitude/latitude data is not reprojected.
LINEAR_ZOOM = 13
#: Pixels across a tile on screen (MapLibre draws vector tiles 512 px wide).
_PIXELS = 512
_ORIGIN = 20037508.342789244  # half the WebMercatorQuad square, metres
_SPHERE = 6378137.0
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_POOL_TIMEOUT_S = 10.0
_STATEMENT_TIMEOUT = "30s"
_GEOM_ALIAS = "_sdi_mvt_geom"

Params = dict[str, Any]


@dataclass(frozen=True)
class TileLayer:
    """What a tile is cut from: one version of a layer table, some attributes."""

    #: ``sdi_data.<table>``
    table: str
    srid: int
    version: int
    #: Attribute columns to put in the tile (existing ones only: checked by
    #: the caller against the version's fields).
    properties: tuple[str, ...] = ()
    #: The MVT layer name (the collection id).
    name: str = "default"
    #: When known (:func:`largest_feature`): every feature of the version is
    #: a line or polygon smaller than this in both directions (storage
    #: units), so tiles whose pixel is larger are empty without a query.
    largest: float | None = None


def tile_in_matrix_set(z: int, y: int, x: int) -> bool:
    """Whether z/y/x is a tile of WebMercatorQuad (zoom 0 to :data:`MAX_ZOOM`)."""
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def _mercator_bounds(z: int, y: int, x: int) -> tuple[float, float, float, float]:
    size = 2 * _ORIGIN / (1 << z)
    left = -_ORIGIN + x * size
    top = _ORIGIN - y * size
    return left, top - size, left + size, top


def _lonlat(mx: float, my: float) -> tuple[float, float]:
    """Spherical Mercator metres to longitude/latitude (EPSG:3857 -> 4326)."""
    lon = math.degrees(mx / _SPHERE)
    lat = math.degrees(math.atan(math.sinh(my / _SPHERE)))
    return lon, lat


def _lonlat_pixel(z: int, y: int, x: int) -> float:
    """Below this size (degrees) features are left out of tile z/y/x (4326)."""
    left, bottom, right, top = _mercator_bounds(z, y, x)
    west, south = _lonlat(left, bottom)
    east, north = _lonlat(right, top)
    return min(east - west, north - south) / _PIXELS


def _col(name: str) -> sql.Composable:
    # Statements run with parameters, so psycopg reads "%" as a placeholder:
    # attribute names from files may contain one.
    return sql.Identifier("t", name.replace("%", "%%"))


def _envelope(prefix: str, box: tuple[float, ...], params: Params) -> list[Any]:
    names = [f"{prefix}{i}" for i in range(4)]
    params.update(zip(names, box, strict=True))
    return [sql.Placeholder(n) for n in names]


def tile_sql(layer: TileLayer, z: int, y: int, x: int) -> tuple[sql.Composed, Params]:
    """The statement returning tile z/y/x of ``layer`` (one ``bytea``, maybe empty)."""
    if not _SLUG.match(layer.table):
        raise ValueError(f"{layer.table!r} is not a layer table")
    if not tile_in_matrix_set(z, y, x):
        raise ValueError(f"No tile {z}/{y}/{x} in WebMercatorQuad.")
    params: Params = {"name": layer.name, "fid": "_sdi_fid", "gname": _GEOM_ALIAS}
    srid = sql.Literal(layer.srid)
    tile = _mercator_bounds(z, y, x)
    margin = (tile[2] - tile[0]) * BUFFER / EXTENT
    search = (tile[0] - margin, tile[1] - margin, tile[2] + margin, tile[3] + margin)
    geom: sql.Composable = sql.SQL("t._sdi_geom")
    exact = z >= EXACT_ZOOM
    west, south = _lonlat(tile[0], tile[1])
    east, north = _lonlat(tile[2], tile[3])
    search_box: sql.Composable
    pixel: sql.Composable
    if layer.srid == 4326:
        # The envelope's edges are a meridian and a parallel: exact in 4326.
        lonlat = (*_lonlat(search[0], search[1]), *_lonlat(search[2], search[3]))
        search_box = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, 4326)").format(
            *_envelope("s", lonlat, params)
        )
        pixel = sql.Placeholder("px")
        params["px"] = _lonlat_pixel(z, y, x)
    else:
        search_box = sql.SQL(
            "ST_Transform(ST_MakeEnvelope({}, {}, {}, {}, 3857), {})"
        ).format(*_envelope("s", search, params), srid)
        # Folded to a constant (immutable functions of parameters).
        pixel = sql.SQL(
            "(least(ST_XMax({b}) - ST_XMin({b}), ST_YMax({b}) - ST_YMin({b})) / {n})"
        ).format(b=search_box, n=sql.Literal(_PIXELS * (1 + 2 * BUFFER / EXTENT)))
    if not exact:
        geom = sql.SQL("ST_Simplify({}, {}, true)").format(geom, pixel)
    box2d = "ST_MakeBox2D(ST_Point({}, {}), ST_Point({}, {}))"
    if layer.srid == 4326 and z >= LINEAR_ZOOM:
        bounds = sql.SQL(box2d).format(
            *_envelope("b", (west, south, east, north), params)
        )
    else:
        if layer.srid != 3857:
            geom = sql.SQL("ST_Transform({}, 3857)").format(geom)
        bounds = sql.SQL(box2d).format(*_envelope("b", tile, params))
    where: list[sql.Composable] = [
        sql.SQL("t._sdi_geom && {}").format(search_box),
        in_version(layer.version),
    ]
    if not exact:
        where.append(
            sql.SQL(
                "(ST_XMax(t._sdi_geom) - ST_XMin(t._sdi_geom) >= {px}"
                " OR ST_YMax(t._sdi_geom) - ST_YMin(t._sdi_geom) >= {px}"
                " OR ST_Dimension(t._sdi_geom) = 0)"
            ).format(px=pixel)
        )
    columns = [sql.SQL("t._sdi_fid")] + [_col(n) for n in layer.properties]
    statement = sql.SQL(
        "SELECT ST_AsMVT(f.*, %(name)s, {extent}, %(gname)s, %(fid)s) FROM ("
        "SELECT {columns}, ST_AsMVTGeom({geom}, {bounds}, {extent}, {buffer}, true)"
        " AS {alias} FROM {table} AS t WHERE {where}) AS f"
    ).format(
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        columns=sql.SQL(", ").join(columns),
        geom=geom,
        bounds=bounds,
        alias=sql.Identifier(_GEOM_ALIAS),
        table=sql.Identifier("sdi_data", layer.table),
        where=sql.SQL(" AND ").join(where),
    )
    return statement, params


def _fetch_one(table: str, statement: sql.Composed, params: Params, what: str) -> Any:
    """The first column of the first row; database trouble becomes provider errors."""
    try:
        with (
            get_pool().connection(timeout=_POOL_TIMEOUT_S) as conn,
            conn.transaction(),
        ):
            # JIT and parallel workers are off on every pool connection
            # (sdi.providers.pool); a tile also gets a time limit.
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (_STATEMENT_TIMEOUT,),
            )
            # Binary results: a tile's bytes travel as they are, not as hex.
            row = conn.execute(statement, params, prepare=False, binary=True).fetchone()
    except PoolTimeout as exc:
        LOGGER.error("no database connection for %s: %s", table, exc)
        raise ProviderUnavailableError() from exc
    except pg_errors.QueryCanceled as exc:
        LOGGER.error("%s of %s timed out", what, table)
        raise ProviderQueryError(
            user_msg="This tile took too long to make; try a deeper zoom level."
        ) from exc
    except pg_errors.UndefinedTable as exc:
        LOGGER.error("layer table sdi_data.%s is missing", table)
        raise ProviderQueryError(
            user_msg="This collection's data is missing; the administrators "
            "have been told."
        ) from exc
    except psycopg.OperationalError as exc:
        LOGGER.error("database unreachable: %s", exc)
        raise ProviderUnavailableError() from exc
    except psycopg.Error as exc:
        LOGGER.exception("%s of sdi_data.%s failed", what, table)
        raise ProviderGenericError(
            user_msg="The tile could not be made; the error has been logged."
        ) from exc
    return row[0] if row is not None else None


def render_vector_tile(layer: TileLayer, z: int, y: int, x: int) -> bytes | None:
    """Tile z/y/x of ``layer`` as MVT bytes, or None when it holds no feature.

    Raises ``ValueError`` for a tile that is not in WebMercatorQuad, and
    pygeoapi provider errors for database trouble.
    """
    statement, params = tile_sql(layer, z, y, x)
    if (
        layer.largest is not None
        and layer.srid == 4326
        and z < EXACT_ZOOM
        and layer.largest < _lonlat_pixel(z, y, x)
    ):
        return None  # every feature would be left out as smaller than a pixel
    value = _fetch_one(layer.table, statement, params, f"tile {z}/{y}/{x}")
    data = bytes(value) if value is not None else b""
    return data or None


def largest_feature(table: str, version: int) -> float | None:
    """The largest width or height of the version's features (storage units).

    None when the version has points (never left out) or no feature. One
    scan of the version: callers keep the answer (versions never change).
    """
    if not _SLUG.match(table):
        raise ValueError(f"{table!r} is not a layer table")
    g = sql.SQL("t._sdi_geom")
    statement = sql.SQL(
        "SELECT CASE WHEN bool_or(ST_Dimension({g}) = 0) THEN NULL ELSE"
        " max(greatest(ST_XMax({g}) - ST_XMin({g}), ST_YMax({g}) - ST_YMin({g})))"
        " END FROM {t} AS t WHERE {v} AND {g} IS NOT NULL"
    ).format(g=g, t=sql.Identifier("sdi_data", table), v=in_version(version))
    value = _fetch_one(table, statement, {}, "feature sizes")
    return float(value) if value is not None else None


def geometry_type(table: str, srid: int, version: int) -> str | None:
    """The geometry type (``POLYGON``...) of a feature of the version, if any."""
    if not _SLUG.match(table):
        raise ValueError(f"{table!r} is not a layer table")
    statement = sql.SQL(
        "SELECT GeometryType(t._sdi_geom) FROM {} AS t"
        " WHERE {} AND t._sdi_geom IS NOT NULL LIMIT 1"
    ).format(sql.Identifier("sdi_data", table), in_version(version))
    value = _fetch_one(table, statement, {}, "geometry type")
    return str(value) if value is not None else None
