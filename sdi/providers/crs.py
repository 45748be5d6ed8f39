"""Output coordinate reference systems: which SRID to transform to, which axis order.

pygeoapi hands providers a ``CrsTransformSpec`` when the requested ``crs``
differs from the storage CRS. We do the transformation in PostGIS
(``ST_Transform``) and honour the CRS's authority axis order as OGC API -
Features Part 2 requires: EPSG:4326 is latitude, longitude and EPSG:2326
northing, easting; CRS84 is longitude, latitude.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyproj
from pygeoapi.crs import CrsTransformSpec, get_crs
from pyproj.exceptions import CRSError

__all__ = ["CRS84", "OutputCrs", "crs_srid", "northing_first", "output_crs"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_LONLAT_AUTHORITIES = {("OGC", "CRS84"), ("OGC", "CRS84h")}


@dataclass(frozen=True)
class OutputCrs:
    """Where geometries go on output: SRID, whether to swap x/y, decimals."""

    srid: int
    flip: bool
    precision: int


def _parse(uri: str) -> pyproj.CRS:
    try:
        crs: pyproj.CRS = get_crs(uri)
    except CRSError as exc:
        raise ValueError(f"Unknown CRS {uri!r}") from exc
    return crs


@functools.lru_cache(maxsize=64)
def crs_srid(uri: str) -> int:
    """The PostGIS SRID (EPSG code) of a CRS URI; CRS84 is 4326."""
    crs = _parse(uri)
    if crs.to_authority() in _LONLAT_AUTHORITIES:
        return 4326
    code = crs.to_epsg()
    if code is None:
        raise ValueError(f"CRS {uri!r} has no EPSG code PostGIS knows.")
    return int(code)


@functools.lru_cache(maxsize=64)
def northing_first(uri: str) -> bool:
    """Whether the CRS's first axis points north or south (latitude, northing)."""
    crs = _parse(uri)
    if crs.to_authority() in _LONLAT_AUTHORITIES:
        return False
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


@functools.lru_cache(maxsize=64)
def _precision(uri: str) -> int:
    # About a millimetre either way: 8 decimals of a degree, 3 of a metre.
    return 8 if _parse(uri).is_geographic else 3


def output_crs(
    spec: CrsTransformSpec | None, storage_crs_uri: str, storage_srid: int
) -> OutputCrs:
    """What to do with stored geometries for a request.

    ``spec`` is None when the client asked for the storage CRS itself (or for
    nothing, when that is CRS84).
    """
    if spec is None:
        return OutputCrs(
            storage_srid, northing_first(storage_crs_uri), _precision(storage_crs_uri)
        )
    target = spec.target_crs_uri
    flip = northing_first(target) and not spec.always_xy
    return OutputCrs(crs_srid(target), flip, _precision(target))
