"""Real GeoTIFFs for the raster tests, written with rasterio into ``tmp_path``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.transform import from_origin

#: Upper-left corner of the test DEM: Kowloon, Hong Kong 1980 Grid (easting, northing).
DEM_ORIGIN = (834000.0, 822000.0)
DEM_RES = 5.0
DEM_NODATA = -9999.0
#: Upper-left corner (lon, lat) and cell size of the test image.
RGB_ORIGIN = (114.10, 22.40)
RGB_RES = 0.0005


def dem_values(width: int, height: int) -> npt.NDArray[np.float32]:
    """Smooth terrain with a little noise and a nodata hole (deterministic)."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    y, x = rows / height, cols / width
    rng = np.random.default_rng(5)
    z = (
        200 * np.sin(3 * x) * np.cos(2 * y)
        + 300 * np.exp(-((x - 0.5) ** 2 + (y - 0.4) ** 2) * 8)
        + rng.normal(0, 0.5, (height, width))
    )
    z[(x - 0.75) ** 2 + (y - 0.25) ** 2 < 0.01] = DEM_NODATA
    return z.astype(np.float32)


def write_dem(
    path: Path,
    width: int = 1200,
    height: int = 900,
    *,
    crs: str | None = "EPSG:2326",
    tiled: bool = False,
) -> Path:
    """A float32 DEM in EPSG:2326 with nodata (striped unless ``tiled``)."""
    extra = {"tiled": True, "blockxsize": 256, "blockysize": 256} if tiled else {}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(*DEM_ORIGIN, DEM_RES, DEM_RES),
        nodata=DEM_NODATA,
        **extra,
    ) as dst:
        dst.write(dem_values(width, height), 1)
        dst.set_band_description(1, "elevation")
        dst.set_band_unit(1, "metre")
    return path


def rgb_values(width: int, height: int) -> npt.NDArray[np.uint8]:
    """Three byte bands: a red ramp west-east, green north-south, blue checks."""
    rows, cols = np.mgrid[0:height, 0:width]
    red = (cols * 255 // max(width - 1, 1)).astype(np.uint8)
    green = (rows * 255 // max(height - 1, 1)).astype(np.uint8)
    blue = (((rows // 16) + (cols // 16)) % 2 * 200).astype(np.uint8)
    return np.stack([red, green, blue])


def write_rgb(path: Path, width: int = 400, height: int = 300) -> Path:
    """A 3-band byte image in EPSG:4326 (no nodata)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs="EPSG:4326",
        transform=from_origin(*RGB_ORIGIN, RGB_RES, RGB_RES),
        photometric="RGB",
    ) as dst:
        dst.write(rgb_values(width, height))
    return path


def zip_of(path: Path, target: Path) -> Path:
    """``path`` alone in a zip (as agencies send them)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, f"data/{path.name}")
    return target


def truncated(path: Path, target: Path) -> Path:
    """The first half of the file ``path``."""
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def write_sparse(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A float32 GeoTIFF declaring ``width`` x ``height`` cells, none written.

    GDAL's SPARSE_OK leaves every tile out of the file, so the default
    50,000 x 50,000 grid (2.5e9 cells, 10 GB of values) takes ~77 KB on disk:
    the tile index alone, as in the upload that issue 9 reported.
    """
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs="EPSG:2326",
        transform=from_origin(*DEM_ORIGIN, DEM_RES, DEM_RES),
        nodata=DEM_NODATA,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        sparse_ok=True,
    ):
        pass
    return path
