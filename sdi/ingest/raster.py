"""Load a GeoTIFF as a new version of a raster layer.

A raster version is a Cloud Optimized GeoTIFF at
``<SDI_RASTER_DIR>/<layer>/v<N>.tif`` (512 x 512 internal tiles, DEFLATE with
a predictor, overviews down to one tile), plus a ``sdi.layer_versions`` row
describing it. The row's ``schema`` holds ``{"fields": [...], "geometry_type":
"Raster", "raster": {...}}`` where ``raster`` is the grid (CRS, transform,
size, resolution, native and WGS 84 bounds), the bands (name, data type,
nodata, colour interpretation, unit, statistics) and the overview factors;
``feature_count`` is the number of grid cells (width x height) and
``geometry_type`` is ``"Raster"``.

The order of work keeps "a version row exists" and "its file exists" true
together: the upload is validated and converted to a temporary file in the
layer's raster directory first (so no lock is held while GDAL works), then one
transaction takes the version number and records the version and the audit
entry, and only after it commits is the file renamed to ``v<N>.tif``. Any
failure removes the temporary file and rolls the transaction back. (Called
inside an outer transaction, the rename happens when this function returns;
should the caller then roll back, the orphan file is replaced by the next
version with that number.)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.crs
from psycopg import Connection
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.shutil import copy as gdal_copy
from rasterio.warp import transform_bounds

from sdi.errors import IngestError, TooLargeError, UnsupportedFormatError
from sdi.ingest.crs import crs_label, resolve_crs
from sdi.ingest.unpack import is_zip, unpack_zip
from sdi.providers.raster import (
    GDAL_ERRORS,
    BandInfo,
    nodata_from_json,
    nodata_to_json,
)
from sdi.providers.raster_render import (
    Style,
    default_style,
    encode_png,
    to_rgba,
    valid_mask,
)
from sdi.registry import audit, get_layer, insert_version, latest_version_number
from sdi.registry.models import Layer, Version
from sdi.settings import Settings

__all__ = [
    "COG_BLOCKSIZE",
    "RASTER_SUFFIXES",
    "ingest_raster",
    "is_raster_file",
    "raster_path",
    "thumbnail_png",
]

LOGGER = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff")
COG_BLOCKSIZE = 512
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".csv", ".tsv", ".gdbtable")
_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
#: GDAL settings for ingestion: no ``.aux.xml`` files beside uploads or COGs.
_GDAL_ENV = {"GDAL_PAM_ENABLED": "NO", "GDAL_NUM_THREADS": "ALL_CPUS"}


def _gdal_message(exc: Exception) -> str:
    text = str(exc).strip()
    return text if len(text) <= 300 else text[:297] + "..."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return [
                n
                for n in zf.namelist()
                if not n.startswith("__MACOSX/") and not Path(n).name.startswith(".")
            ]
    except (zipfile.BadZipFile, OSError):
        return []


def _tiffs(names: list[str]) -> list[str]:
    return [n for n in names if n.lower().endswith(RASTER_SUFFIXES)]


def is_raster_file(path: Path) -> bool:
    """Whether ``path`` is a TIFF, or a zip holding one (by content, not name)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    if head in _TIFF_MAGIC:
        return True
    if not is_zip(path):
        return False
    names = _zip_names(path)
    # A zip of vector data may carry a picture too: then it is vector data.
    if any(n.lower().endswith(_VECTOR_SUFFIXES) or ".gdb/" in n.lower() for n in names):
        return False
    return bool(_tiffs(names))


def raster_path(settings: Settings, version: Version) -> Path:
    """The COG of a raster version."""
    raster = version.schema.get("raster") or {}
    name = raster.get("file")
    if not isinstance(name, str) or not name:
        raise IngestError(f"Version {version.number} is not a raster version.")
    return settings.raster_dir / name


# -- reading and checking the upload ------------------------------------------


def _locate(path: Path, work_dir: Path, settings: Settings) -> tuple[Path, str | None]:
    """The GeoTIFF to read (unpacked from a zip) and its name inside the zip."""
    if not is_zip(path):
        return path, None
    files = unpack_zip(path, work_dir / "unpacked", settings=settings)
    tiffs = [f for f in files if f.suffix.lower() in RASTER_SUFFIXES]
    if len(tiffs) != 1:
        found = ", ".join(f.name for f in tiffs) or "none"
        raise IngestError(
            f"{path.name} must hold exactly one GeoTIFF (.tif); it holds {found}."
        )
    member = tiffs[0]
    return member, member.relative_to(work_dir / "unpacked").as_posix()


def _open(path: Path, shown: str) -> DatasetReader:
    try:
        with warnings.catch_warnings():
            # _check explains a missing geotransform better than the warning.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except GDAL_ERRORS as exc:
        with path.open("rb") as fh:
            tiff = fh.read(4) in _TIFF_MAGIC
        if tiff:
            raise IngestError(
                f"{shown} is a TIFF but damaged or truncated: {_gdal_message(exc)}. "
                "Upload the complete file again."
            ) from exc
        raise IngestError(
            f"{shown} is not a raster sdi can read: {_gdal_message(exc)}. Upload a "
            "GeoTIFF (.tif), or a zip holding one."
        ) from exc


@dataclass
class _Checked:
    """What validation found out about an upload."""

    crs: CRS
    label: str
    uri: str
    warnings: list[str] = field(default_factory=list)
    override: bool = False


def _crs_uri(crs: CRS) -> str | None:
    code = crs.to_epsg(min_confidence=70)
    return f"http://www.opengis.net/def/crs/EPSG/0/{code}" if code else None


def _check_size(src: DatasetReader, shown: str, limit: int) -> None:
    """Refuse a grid of more than ``limit`` cells x bands, from its header alone.

    A GeoTIFF declares its size in a few bytes: a sparse 77 KB file can claim
    50,000 x 50,000 float32 cells, and converting it takes minutes and
    gigabytes. This runs before anything is converted or written.
    """
    total = src.width * src.height * src.count
    if total > limit:
        raise TooLargeError(
            f"{shown} is {src.width:,} x {src.height:,} cells x {src.count} band(s) "
            f"= {total:,} values, more than this server's limit of {limit:,} "
            "(SDI_MAX_RASTER_CELLS). Split it into smaller GeoTIFFs (e.g. "
            "gdal_translate -srcwin), or ask the operator to raise the limit."
        )


def _check(src: DatasetReader, shown: str, crs: str | None, max_cells: int) -> _Checked:
    """Refuse what sdi cannot serve, with a message saying what to do."""
    if src.driver != "GTiff":
        raise UnsupportedFormatError(
            f"{shown} is a {src.driver} raster; sdi takes GeoTIFF (.tif). Convert it, "
            f"e.g. gdal_translate -of GTiff {shown} out.tif."
        )
    if src.count < 1 or src.width < 1 or src.height < 1:
        raise IngestError(f"{shown} holds no cells.")
    _check_size(src, shown, max_cells)
    bad = sorted({d for d in src.dtypes if d not in _DTYPES})
    if bad:
        raise IngestError(
            f"{shown} has bands of type {', '.join(bad)}; sdi serves 8-, 16- and "
            "32-bit integers and 32- or 64-bit floats."
        )
    transform = src.transform
    if transform.is_identity:
        if src.gcps[0] or src.rpcs:
            raise IngestError(
                f"{shown} is georeferenced by control points, not a grid; warp it "
                "first, e.g. gdalwarp -t_srs EPSG:2326 in.tif out.tif."
            )
        raise IngestError(
            f"{shown} has no georeferencing (no geotransform): the position of its "
            "cells is unknown. Export it from your GIS as a GeoTIFF."
        )
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise IngestError(
            f"{shown} is a rotated or flipped grid; make it north-up first, e.g. "
            "gdalwarp in.tif out.tif."
        )
    file_crs = src.crs.to_wkt() if src.crs else None
    resolved, warnings = resolve_crs(file_crs, override=crs, what=shown)
    uri = _crs_uri(resolved)
    if uri is None:
        raise IngestError(
            f"{shown}'s CRS ({resolved.name}) has no EPSG code, which OGC API clients "
            "need; reproject it (e.g. gdalwarp -t_srs EPSG:2326) or pass the EPSG "
            "code its coordinates are in with --crs."
        )
    return _Checked(
        crs=resolved,
        label=crs_label(resolved),
        uri=uri,
        warnings=warnings,
        override=crs is not None,
    )


def _with_crs(source: Path, work_dir: Path, crs: CRS) -> Path:
    """A copy of ``source`` in ``work_dir`` carrying ``crs`` (the upload stays)."""
    target = source
    if work_dir not in source.parents:
        target = work_dir / f"crs-{source.name}"
        shutil.copyfile(source, target)
    with rasterio.open(target, "r+") as dst:
        dst.crs = rasterio.crs.CRS.from_wkt(crs.to_wkt())
    return target


# -- converting and describing ---------------------------------------------------


def _overview_resampling(src: DatasetReader) -> str:
    # Classes (one integer band: land use, zoning) must not be averaged.
    if src.count == 1 and "int" in src.dtypes[0]:
        return "NEAREST"
    return "AVERAGE"


def _to_cog(src: DatasetReader, target: Path, shown: str) -> None:
    try:
        gdal_copy(
            src,
            target,
            driver="COG",
            BLOCKSIZE=COG_BLOCKSIZE,
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            LEVEL=6,
            OVERVIEWS="AUTO",
            RESAMPLING=_overview_resampling(src),
            BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",
        )
    except GDAL_ERRORS as exc:
        raise IngestError(
            f"{shown} is damaged or truncated: reading it failed "
            f"({_gdal_message(exc)}). Upload the complete file again."
        ) from exc


def _band_names(src: DatasetReader) -> list[str]:
    names = []
    for i, description in enumerate(src.descriptions, start=1):
        text = (description or "").strip()
        usable = text and "," not in text and text not in names and len(text) <= 64
        names.append(text if usable else f"band{i}")
    return names


def _stats(cog: DatasetReader, index: int) -> dict[str, float] | None:
    try:
        (stats,) = cog.stats(indexes=[index], approx=False)
    except GDAL_ERRORS:
        return None  # every cell is nodata
    values = {
        "min": float(stats.min),
        "max": float(stats.max),
        "mean": float(stats.mean),
        "stddev": float(stats.std),
    }
    return values if all(math.isfinite(v) for v in values.values()) else None


def _describe(cog: DatasetReader, checked: _Checked, relative: str) -> dict[str, Any]:
    """``schema.raster`` of the version, read back from the written COG."""
    names = _band_names(cog)
    bands = []
    for i in cog.indexes:
        nodata = cog.nodatavals[i - 1]
        bands.append(
            {
                "index": i,
                "name": names[i - 1],
                "description": cog.descriptions[i - 1] or "",
                "dtype": cog.dtypes[i - 1],
                "nodata": nodata_to_json(nodata),
                "colorinterp": cog.colorinterp[i - 1].name,
                "unit": cog.units[i - 1] or "",
                "stats": _stats(cog, i),
            }
        )
    left, bottom, right, top = cog.bounds
    try:
        wgs84 = transform_bounds(cog.crs, "EPSG:4326", *cog.bounds, densify_pts=21)
    except GDAL_ERRORS as exc:
        raise IngestError(
            f"The grid's extent cannot be expressed in longitude/latitude ({exc})."
        ) from exc
    if not all(math.isfinite(v) for v in wgs84):
        raise IngestError(
            "The grid's extent cannot be expressed in longitude/latitude."
        )
    return {
        "file": relative,
        "width": cog.width,
        "height": cog.height,
        "count": cog.count,
        "crs": checked.label,
        "crs_uri": checked.uri,
        "crs_wkt": cog.crs.to_wkt(),
        "transform": list(cog.transform)[:6],
        "resolution": [abs(cog.res[0]), abs(cog.res[1])],
        "bounds": [left, bottom, right, top],
        "bounds_wgs84": [float(v) for v in wgs84],
        "bands": bands,
        "overviews": cog.overviews(1),
        "blocksize": COG_BLOCKSIZE,
        "compress": "DEFLATE",
    }


# -- the entry point -----------------------------------------------------------


def ingest_raster(
    conn: Connection[Any],
    settings: Settings,
    path: Path,
    *,
    layer: str,
    crs: str | None = None,
    filename: str | None = None,
    user_id: int | None = None,
    actor: str = "cli",
    note: str = "",
) -> Version:
    """Ingest the GeoTIFF ``path`` (or a zip holding one) as the next version of
    the raster layer ``layer``; the version is created but not published.

    ``crs`` gives the CRS of a file that has none (or overrides its own). Raises
    an ``SdiError`` subclass with a user-facing message on bad input; nothing
    is left behind then (no version row, no file).
    """
    path = Path(path)
    shown = filename or path.name
    if not path.is_file():
        raise IngestError(f"File not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{shown} is empty (0 bytes).")
    if size > settings.max_upload_bytes:
        raise TooLargeError(
            f"{shown} is {size:,} bytes; the limit is {settings.max_upload_bytes:,} "
            "(SDI_MAX_UPLOAD_BYTES)."
        )
    target = get_layer(conn, layer)
    _require_raster_layer(target)
    started = time.monotonic()
    timings: dict[str, float] = {}
    checksum = _sha256(path)
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="raster-", dir=settings.upload_dir))
    layer_dir = settings.raster_dir / target.slug
    temp = layer_dir / f".upload-{uuid.uuid4().hex}.tif.part"
    try:
        with rasterio.Env(**_GDAL_ENV):
            source, member = _locate(path, work_dir, settings)
            shown_source = f"{shown}:{member}" if member else shown
            with _open(source, shown_source) as src:
                checked = _check(src, shown_source, crs, settings.max_raster_cells)
            if checked.override:
                source = _with_crs(source, work_dir, checked.crs)
            layer_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            with _open(source, shown_source) as src:
                _to_cog(src, temp, shown_source)
            timings["cog"] = round(time.monotonic() - t0, 3)
            t0 = time.monotonic()
            with rasterio.open(temp) as cog:
                # The file name is settled below, once the number is known.
                raster = _describe(cog, checked, "")
            timings["describe"] = round(time.monotonic() - t0, 3)
        version = _record(
            conn,
            target.slug,
            temp,
            raster,
            checked,
            source_filename=shown,
            member=member,
            checksum=checksum,
            size=size,
            user_id=user_id,
            actor=actor,
            note=note,
            started=started,
            timings=timings,
        )
    except BaseException:
        temp.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            layer_dir.rmdir()  # only if this upload was the first and left it empty
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return version


def _require_raster_layer(layer: Layer) -> None:
    if layer.kind != "raster":
        raise IngestError(
            f"Layer {layer.slug!r} holds vector features; a GeoTIFF needs a raster "
            "layer. Register a new layer for it."
        )


def _record(
    conn: Connection[Any],
    slug: str,
    temp: Path,
    raster: dict[str, Any],
    checked: _Checked,
    *,
    source_filename: str,
    member: str | None,
    checksum: str,
    size: int,
    user_id: int | None,
    actor: str,
    note: str,
    started: float,
    timings: dict[str, float],
) -> Version:
    """Take the number, write the version and audit rows, then move the file."""
    cells = int(raster["width"]) * int(raster["height"])
    with conn.transaction():
        target = get_layer(conn, slug, for_update=True)
        _require_raster_layer(target)
        number = latest_version_number(conn, target.id) + 1
        relative = f"{slug}/v{number}.tif"
        raster["file"] = relative
        final = temp.parent / f"v{number}.tif"
        previous = _previous_checksum(conn, target.id, number - 1)
        elapsed = time.monotonic() - started
        version = insert_version(
            conn,
            layer_id=target.id,
            number=number,
            created_by=user_id,
            source_filename=source_filename,
            source_sha256=checksum,
            source_format="GTiff (zip)" if member else "GTiff",
            source_layer=member,
            source_crs=checked.label,
            source_encoding=None,
            feature_count=cells,
            geometry_type="Raster",
            extent=raster["bounds_wgs84"],
            schema={
                "fields": [
                    {"name": b["name"], "type": b["dtype"]} for b in raster["bands"]
                ],
                "geometry_type": "Raster",
                "raster": raster,
            },
            diff={
                "previous": number - 1 if number > 1 else None,
                "same_file_as_previous": previous == checksum,
            },
            report={
                "cells": cells,
                "source_bytes": size,
                "cog_bytes": temp.stat().st_size,
                "duration_s": round(elapsed, 3),
                "warnings": checked.warnings,
                "timings": timings,
            },
            note=note,
        )
        audit.record(
            conn,
            "ingest",
            "layer",
            slug,
            actor=actor,
            user_id=user_id,
            details={"version": number, "file": source_filename, "cells": cells},
        )
    # Committed (or, nested, released to the caller's transaction): now the file.
    try:
        os.replace(temp, final)
    except OSError:
        LOGGER.error("%s v%d is recorded but its COG could not be moved", slug, number)
        raise
    LOGGER.info(
        "ingested %s as %s v%d: %d x %d x %d cells in %.1fs",
        source_filename,
        slug,
        number,
        raster["width"],
        raster["height"],
        raster["count"],
        time.monotonic() - started,
    )
    return version


def _previous_checksum(conn: Connection[Any], layer_id: int, number: int) -> str | None:
    if number < 1:
        return None
    row = conn.execute(
        "SELECT source_sha256 FROM sdi.layer_versions WHERE layer_id = %s "
        "AND number = %s",
        (layer_id, number),
    ).fetchone()
    return str(row[0]) if row else None


# -- previews ------------------------------------------------------------------


def thumbnail_png(
    source: Path | Version, size: int = 256, *, settings: Settings | None = None
) -> bytes:
    """A PNG preview of a raster, at most ``size`` pixels on its long side.

    ``source`` is a GeoTIFF path, or a raster version (then ``settings`` says
    where its COG is, and the version's recorded statistics set the colour
    scale). Drawn in the raster's own CRS, north up, with the default style
    of the map tiles; nodata is transparent. Reads overviews, not the full grid.
    """
    if size < 1:
        raise ValueError("size must be positive")
    bands: list[BandInfo] | None = None
    if isinstance(source, Version):
        if settings is None:
            raise ValueError("a version's thumbnail needs the settings")
        path = raster_path(settings, source)
        bands = [BandInfo.from_json(b) for b in source.schema["raster"]["bands"]]
    else:
        path = Path(source)
    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
            scale = size / max(src.width, src.height)
            width = max(1, round(src.width * scale))
            height = max(1, round(src.height * scale))
            if bands is None:
                bands = _bands_of(src)
            drawn = bands[: 4 if len(bands) == 4 else 3]
            style = default_style(drawn)
            if style.mode == "ramp":
                drawn = drawn[:1]
            data = src.read(
                indexes=[b.index for b in drawn],
                out_shape=(len(drawn), height, width),
                resampling=Resampling.nearest,
            )
    except GDAL_ERRORS as exc:
        raise IngestError(f"Cannot draw {path.name}: {_gdal_message(exc)}") from exc
    valid = valid_mask(data, drawn)
    if any(b.minimum is None for b in drawn):
        style = _style_from(data, valid, style)
    return encode_png(to_rgba(data, valid, style))


def _bands_of(src: DatasetReader) -> list[BandInfo]:
    return [
        BandInfo(
            index=i,
            name=f"band{i}",
            dtype=src.dtypes[i - 1],
            nodata=nodata_from_json(nodata_to_json(src.nodatavals[i - 1])),
            colorinterp=src.colorinterp[i - 1].name,
            unit="",
            description="",
            minimum=None,
            maximum=None,
            mean=None,
            stddev=None,
        )
        for i in src.indexes
    ]


def _style_from(
    data: npt.NDArray[Any], valid: npt.NDArray[np.bool_], style: Style
) -> Style:
    """``style`` with ranges from the drawn values (no statistics recorded)."""
    if style.mode in ("rgb", "rgba") or not valid.any():
        return style
    ranges = []
    for i in range(len(style.ranges)):
        values = data[i][valid].astype(np.float64)
        low, high = float(values.min()), float(values.max())
        ranges.append((low, high if high > low else low + 1.0))
    return Style(style.mode, tuple(ranges))
