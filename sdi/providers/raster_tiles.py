"""Map tiles of a raster version: 256 x 256 PNGs in the WebMercatorQuad matrix set.

A tile is warped from the COG with a GDAL warped VRT whose grid is exactly the
tile's (EPSG:3857), reading from the coarsest overview that still has at least
one source cell per tile pixel, so a tile costs about the same at every zoom
level. Colours come from :mod:`sdi.providers.raster_render`: RGB for 3-band
byte images, a viridis-like ramp over the recorded minimum..maximum for
anything else. Pixels outside the data or at nodata are transparent; a tile
with no data at all is ``None`` (the API answers 204 No Content).

Also the OGC API - Tiles metadata of the tile set (limits per zoom level).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pygeoapi.provider.base import ProviderGenericError
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT

from sdi.providers.raster import GDAL_ERRORS, RasterInfo, open_dataset
from sdi.providers.raster_render import default_style, render_png

__all__ = [
    "MAX_ZOOM",
    "TILE_SIZE",
    "WEB_MERCATOR_QUAD",
    "TileRange",
    "mercator_bounds",
    "render_tile",
    "tile_bounds",
    "tile_ranges",
]

LOGGER = logging.getLogger(__name__)

TILE_SIZE = 256
MAX_ZOOM = 24
WEB_MERCATOR_QUAD = "WebMercatorQuad"
WEB_MERCATOR_QUAD_URI = (
    "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
)
EPSG_3857_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
#: Half the width of the WebMercatorQuad square, in metres.
_ORIGIN = 20037508.342789244
_MAX_LAT = 85.0511287798066


def tile_bounds(z: int, y: int, x: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds (left, bottom, right, top) of tile z/y/x."""
    size = 2 * _ORIGIN / (1 << z)
    left = -_ORIGIN + x * size
    top = _ORIGIN - y * size
    return left, top - size, left + size, top


def mercator_bounds(
    bounds_wgs84: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds in EPSG:3857 metres (spherical formula)."""
    west, south, east, north = bounds_wgs84

    def y_of(lat: float) -> float:
        lat = max(-_MAX_LAT, min(_MAX_LAT, lat))
        return (
            _ORIGIN / math.pi * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        )

    def x_of(lon: float) -> float:
        return _ORIGIN * lon / 180.0

    return x_of(west), y_of(south), x_of(east), y_of(north)


@dataclass(frozen=True)
class TileRange:
    """The tiles of one zoom level that hold data (OGC ``tileMatrixSetLimits``)."""

    zoom: int
    min_row: int
    max_row: int
    min_col: int
    max_col: int

    def to_json(self) -> dict[str, Any]:
        """As OGC API - Tiles writes it."""
        return {
            "tileMatrix": str(self.zoom),
            "minTileRow": self.min_row,
            "maxTileRow": self.max_row,
            "minTileCol": self.min_col,
            "maxTileCol": self.max_col,
        }


def _range(z: int, merc: tuple[float, float, float, float]) -> TileRange:
    size = 2 * _ORIGIN / (1 << z)
    last = (1 << z) - 1

    def clamp(v: float) -> int:
        return max(0, min(last, math.floor(v)))

    left, bottom, right, top = merc
    return TileRange(
        zoom=z,
        min_row=clamp((_ORIGIN - top) / size),
        max_row=clamp((_ORIGIN - bottom) / size - 1e-9),
        min_col=clamp((left + _ORIGIN) / size),
        max_col=clamp((right + _ORIGIN) / size - 1e-9),
    )


def tile_ranges(info: RasterInfo, max_zoom: int = MAX_ZOOM) -> list[TileRange]:
    """The tiles holding the raster, per zoom level 0..``max_zoom``."""
    merc = mercator_bounds(info.bounds_wgs84)
    return [_range(z, merc) for z in range(max_zoom + 1)]


@functools.lru_cache(maxsize=256)
def _units_per_mercator_metre(info: RasterInfo) -> float:
    """How many CRS units of the raster one EPSG:3857 metre spans (at its centre).

    Good enough to pick an overview, and free of a PROJ call per tile.
    """
    left, _, right, _ = mercator_bounds(info.bounds_wgs84)
    return (info.bounds[2] - info.bounds[0]) / max(right - left, 1e-9)


def _overview_level(info: RasterInfo, tile: tuple[float, float, float, float]) -> int:
    """The coarsest overview with at least one cell per tile pixel (-1: none)."""
    tile_units = (tile[2] - tile[0]) * _units_per_mercator_metre(info)
    cells_per_pixel = tile_units / max(info.xres, info.yres) / TILE_SIZE
    level = -1
    for i, factor in enumerate(info.overviews):
        if factor <= cells_per_pixel:
            level = i
    return level


def _resampling(info: RasterInfo) -> Resampling:
    # A single integer band is likely classes (land use): never blend them.
    if info.count == 1 and info.bands[0].is_integer:
        return Resampling.nearest
    return Resampling.bilinear


def render_tile(
    info: RasterInfo,
    z: int,
    y: int,
    x: int,
    before_read: Callable[[], None] | None = None,
) -> bytes | None:
    """The PNG of tile z/y/x, or None when it holds no data.

    Raises ``ValueError`` for a tile that is not in WebMercatorQuad.
    ``before_read`` is called just before the tile is read (not for a tile
    outside the data): the API takes a render slot there.
    """
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < (1 << z) and 0 <= y < (1 << z)):
        raise ValueError(f"No tile {z}/{y}/{x} in {WEB_MERCATOR_QUAD}.")
    tile = tile_bounds(z, y, x)
    left, bottom, right, top = mercator_bounds(info.bounds_wgs84)
    if tile[0] >= right or tile[2] <= left or tile[1] >= top or tile[3] <= bottom:
        return None
    if before_read is not None:
        before_read()
    level = _overview_level(info, tile)
    dataset = open_dataset(info.path, None if level < 0 else level)
    bands = [b.index for b in info.bands][: 4 if info.count == 4 else 3]
    chosen = [info.band(i) for i in bands]
    style = default_style(chosen)
    if style.mode == "ramp":
        bands, chosen = bands[:1], chosen[:1]
    with WarpedVRT(
        dataset,
        crs="EPSG:3857",
        transform=from_bounds(*tile, TILE_SIZE, TILE_SIZE),
        width=TILE_SIZE,
        height=TILE_SIZE,
        resampling=_resampling(info),
        add_alpha=True,
        # Validity is in the alpha band. rasterio's default, "start from
        # nodata", makes GDAL warn on every tile (the warped bands have none).
        init_dest_nodata=False,
    ) as vrt:
        try:
            data = vrt.read(indexes=[*bands, vrt.count])
        except GDAL_ERRORS as exc:
            LOGGER.error("tile %d/%d/%d of %s failed: %s", z, y, x, info.path, exc)
            raise ProviderGenericError(
                user_msg="The tile could not be drawn; the error has been logged."
            ) from exc
    valid = data[-1] > 0
    if not valid.any():
        return None
    return render_png(data[:-1], valid, style)
