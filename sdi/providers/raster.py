"""What the raster providers share: a layer's grid, open COG handles, cell windows.

A raster version is one Cloud Optimized GeoTIFF written by ``sdi.ingest``; its
grid, bands and statistics are recorded in the version and copied by
``sdi.publish`` into the provider definition (``options.raster``), so building
a provider (pygeoapi does it per request) reads no file. Reads open the COG
through a small per-thread cache of rasterio handles (a handle must not be
shared between threads), checked against the file's inode and mtime so that a
replaced file is never read through a stale handle.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from pygeoapi.provider.base import ProviderConnectionError, ProviderGenericError
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

__all__ = [
    "GDAL_ERRORS",
    "BandInfo",
    "CrsAxes",
    "RasterInfo",
    "cell_window",
    "close_datasets",
    "crs_axes",
    "nodata_from_json",
    "nodata_to_json",
    "open_dataset",
]

LOGGER = logging.getLogger(__name__)

#: What rasterio raises when GDAL fails: its own errors, and GDAL's CPLE_*
#: errors passed through as they are (their base class lives in rasterio._err).
GDAL_ERRORS: tuple[type[Exception], ...] = (RasterioError, CPLE_BaseError)

#: Handles kept open per thread (each is one file descriptor).
_CACHE_SIZE = 16
_LOCAL = threading.local()
#: A bound within this fraction of a cell of a cell edge counts as on the edge,
#: so that a bbox drawn on cell edges does not pull in the neighbouring cells.
_EDGE_TOLERANCE = 1e-6


def nodata_to_json(value: float | None) -> float | str | None:
    """A nodata value as JSON can hold it (NaN becomes ``"nan"``)."""
    if value is None:
        return None
    return "nan" if math.isnan(value) else float(value)


def nodata_from_json(value: Any) -> float | None:
    """The inverse of :func:`nodata_to_json`."""
    if value is None:
        return None
    if isinstance(value, str):
        return float(value)  # "nan", "inf"
    return float(value)


class RasterFileMissingError(ProviderConnectionError):  # type: ignore[misc]
    """The COG of the configured version is gone (withdrawn a moment ago):
    503 with ``Retry-After``, never a 500."""

    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "ServiceUnavailable"


def _config_error(message: str) -> ProviderGenericError:
    LOGGER.error("bad sdi raster provider configuration: %s", message)
    return ProviderGenericError(f"Bad sdi raster provider configuration: {message}")


@dataclass(frozen=True)
class BandInfo:
    """One band of a raster version, as recorded at ingestion."""

    index: int  # 1-based, as GDAL counts
    name: str
    dtype: str
    nodata: float | None
    colorinterp: str
    unit: str
    description: str
    minimum: float | None
    maximum: float | None
    mean: float | None
    stddev: float | None

    @property
    def is_integer(self) -> bool:
        """Whether the band holds integers."""
        return "int" in self.dtype

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BandInfo:
        """From a version's ``schema.raster.bands`` entry."""
        stats = data.get("stats") or {}

        def number(key: str) -> float | None:
            value = stats.get(key)
            return None if value is None else float(value)

        return cls(
            index=int(data["index"]),
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            nodata=nodata_from_json(data.get("nodata")),
            colorinterp=str(data.get("colorinterp") or "undefined"),
            unit=str(data.get("unit") or ""),
            description=str(data.get("description") or ""),
            minimum=number("min"),
            maximum=number("max"),
            mean=number("mean"),
            stddev=number("stddev"),
        )


@dataclass(frozen=True)
class RasterInfo:
    """The grid and bands of one raster version (from the provider definition)."""

    path: Path
    width: int
    height: int
    crs_wkt: str
    crs_uri: str
    transform: Affine
    bounds: tuple[float, float, float, float]  # native: left, bottom, right, top
    bounds_wgs84: tuple[float, float, float, float]
    bands: tuple[BandInfo, ...]
    overviews: tuple[int, ...]

    @classmethod
    def from_config(cls, path: Any, raster: Any) -> RasterInfo:
        """Validate and read ``data`` (the COG path) and ``options.raster``."""
        if not isinstance(path, str) or not path:
            raise _config_error("data must be the path of the COG")
        if not isinstance(raster, Mapping):
            raise _config_error("options.raster must be a mapping")
        try:
            a, b, c, d, e, f = (float(v) for v in raster["transform"])
            info = cls(
                path=Path(path),
                width=int(raster["width"]),
                height=int(raster["height"]),
                crs_wkt=str(raster["crs_wkt"]),
                crs_uri=str(raster["crs_uri"]),
                transform=Affine(a, b, c, d, e, f),
                bounds=_four(raster["bounds"]),
                bounds_wgs84=_four(raster["bounds_wgs84"]),
                bands=tuple(BandInfo.from_json(band) for band in raster["bands"]),
                overviews=tuple(int(v) for v in raster.get("overviews") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _config_error(f"options.raster is incomplete: {exc!r}") from exc
        if not info.bands or info.width < 1 or info.height < 1:
            raise _config_error("options.raster describes an empty grid")
        if info.transform.b != 0 or info.transform.d != 0:
            raise _config_error("rotated grids are not served")
        return info

    @property
    def count(self) -> int:
        """Number of bands."""
        return len(self.bands)

    @property
    def xres(self) -> float:
        """Cell width in CRS units."""
        return float(self.transform.a)

    @property
    def yres(self) -> float:
        """Cell height in CRS units (positive)."""
        return float(-self.transform.e)

    @property
    def axes(self) -> CrsAxes:
        """Axis labels and units of the native CRS (by its EPSG URI: GDAL's WKT1
        has no axis abbreviations)."""
        return crs_axes(self.crs_uri or self.crs_wkt)

    def band(self, index: int) -> BandInfo:
        """The band with GDAL index ``index`` (1-based)."""
        return self.bands[index - 1]


def _four(values: Sequence[Any]) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    return a, b, c, d


@dataclass(frozen=True)
class CrsAxes:
    """What clients need to know about a CRS's axes."""

    x_label: str  # the easting / longitude axis's abbreviation, e.g. "E", "Lon"
    y_label: str
    x_unit: str
    y_unit: str
    geographic: bool
    #: Axis labels in the CRS's own order (EPSG:2326: N, E).
    order: tuple[str, str]


@functools.lru_cache(maxsize=64)
def crs_axes(definition: str) -> CrsAxes:
    """The axes of a CRS given as a URI or WKT (cached: parsing takes a while)."""
    try:
        crs = CRS.from_user_input(definition)
    except CRSError as exc:
        raise _config_error(f"unreadable CRS: {exc}") from exc
    axes = crs.axis_info[:2]
    if len(axes) < 2:
        raise _config_error(f"CRS {crs.name!r} has fewer than two axes")
    by_direction = {a.direction.lower(): a for a in axes}
    east = by_direction.get("east") or by_direction.get("west") or axes[0]
    north = by_direction.get("north") or by_direction.get("south") or axes[1]
    x_label = east.abbrev or "x"
    y_label = north.abbrev or "y"
    if x_label == y_label:
        x_label, y_label = "x", "y"
    order = (x_label, y_label) if axes[0] is east else (y_label, x_label)
    return CrsAxes(
        x_label=x_label,
        y_label=y_label,
        x_unit=east.unit_name or "",
        y_unit=north.unit_name or "",
        geographic=bool(crs.is_geographic),
        order=order,
    )


def cell_window(
    info: RasterInfo, region: tuple[float, float, float, float]
) -> Window | None:
    """The cells of ``info``'s grid that ``region`` (native x/y bounds) touches.

    A cell is included when the region overlaps it by more than a sliver; a
    region narrower than a cell (e.g. a slice at one coordinate) still yields
    the cell holding it. None when the region misses the grid.
    """
    if not all(math.isfinite(v) for v in region):
        return None
    minx, miny, maxx, maxy = region
    if minx > maxx or miny > maxy:
        return None
    left, top = info.transform.c, info.transform.f
    c0f = (minx - left) / info.xres
    c1f = (maxx - left) / info.xres
    r0f = (top - maxy) / info.yres
    r1f = (top - miny) / info.yres
    col0 = math.floor(c0f + _EDGE_TOLERANCE)
    col1 = math.ceil(c1f - _EDGE_TOLERANCE)
    row0 = math.floor(r0f + _EDGE_TOLERANCE)
    row1 = math.ceil(r1f - _EDGE_TOLERANCE)
    if col1 <= col0:  # a slice: the cell containing the coordinate
        col0 = math.floor(c0f)
        col1 = col0 + 1
    if row1 <= row0:
        row0 = math.floor(r0f)
        row1 = row0 + 1
    col0, col1 = max(col0, 0), min(col1, info.width)
    row0, row1 = max(row0, 0), min(row1, info.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


# -- open handles ---------------------------------------------------------------


def _cache() -> OrderedDict[tuple[str, int], tuple[tuple[int, int], DatasetReader]]:
    cache = getattr(_LOCAL, "datasets", None)
    if cache is None:
        cache = OrderedDict()
        _LOCAL.datasets = cache
    return cache  # type: ignore[no-any-return]


def open_dataset(path: Path, overview_level: int | None = None) -> DatasetReader:
    """A rasterio handle on ``path`` (or one of its overviews) for this thread.

    ``overview_level`` 0 is the first overview (half resolution for a COG
    built by sdi). Do not close the handle: it stays cached.
    """
    key = (str(path), -1 if overview_level is None else overview_level)
    try:
        stat = os.stat(path)
    except OSError as exc:
        # A withdrawn version's file is deleted as soon as the registry commits;
        # a worker still serving the previous configuration (at most
        # RELOAD_INTERVAL_S) asks for it: a retry reaches the new configuration.
        LOGGER.warning("raster file %s is missing: %s", path, exc)
        raise RasterFileMissingError(
            user_msg="This layer has just changed; ask again in a second."
        ) from exc
    stamp = (stat.st_ino, stat.st_mtime_ns)
    cache = _cache()
    entry = cache.get(key)
    if entry is not None:
        if entry[0] == stamp:
            cache.move_to_end(key)
            return entry[1]
        entry[1].close()
        del cache[key]
    try:
        if overview_level is None:
            dataset = rasterio.open(path)
        else:
            dataset = rasterio.open(path, overview_level=overview_level)
    except GDAL_ERRORS as exc:
        LOGGER.error("cannot open raster %s: %s", path, exc)
        raise ProviderConnectionError(
            user_msg="The raster file of this collection cannot be read."
        ) from exc
    cache[key] = (stamp, dataset)
    while len(cache) > _CACHE_SIZE:
        _, (_, old) = cache.popitem(last=False)
        old.close()
    return dataset


def close_datasets() -> None:
    """Close this thread's cached handles (tests, before deleting files)."""
    cache = _cache()
    while cache:
        _, (_, dataset) = cache.popitem()
        dataset.close()
