"""Open an uploaded file with fiona and hand the loader batches of WKB and rows.

:func:`open_source` finds the dataset (unpacking a zip safely), detects its
format by content, its text encoding and its CRS, checks the attribute names,
and returns a :class:`~sdi.ingest.source.Source` whose batches hold 2D ISO WKB
reprojected to the storage CRS and attribute values of the fields' types.

Speed matters (a 300,000-polygon Shapefile is the benchmark), so geometries
are built a batch at a time from flat coordinate arrays with shapely 2's
vectorised functions, never coordinate by coordinate in Python.

Conventions the loader and users can rely on:

* Attribute names are kept exactly; names starting with ``_sdi_``, names
  equal but for letter case, and PostgreSQL's system column names (``xmin``,
  ``ctid``, ...) are refused.
* CSV files are read with fiona as text; sdi infers the column types itself
  (GDAL's detection turns codes such as ``"001"`` into the number 1), an
  empty cell is no value, and the coordinate columns are consumed by the
  point geometry: they do not also appear as attributes.
* Timestamps with a UTC offset are stored in UTC, without the offset.
* A value that cannot be read as its field's type becomes None, and
  ``SourceInfo.warnings`` says how many; warnings are complete only after
  the last batch has been read.
* Invalid geometries are passed on as they are (the loader repairs them);
  ones GEOS cannot even build become None, with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import json
import logging
import operator
import os
import pickle
import queue as queue_module
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import fiona
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

from sdi.errors import IngestError, TooLargeError, UnsupportedFormatError
from sdi.ingest.crs import crs_label, is_ballpark, resolve_crs, transformer_to
from sdi.ingest.declared_crs import check_declared_crs
from sdi.ingest.encoding import detect_dbf_encoding, detect_text_encoding
from sdi.ingest.limits import check_fields, check_no_nul
from sdi.ingest.shprecords import ShapeRecords
from sdi.ingest.source import Batch, Field, Source, SourceInfo
from sdi.ingest.textsniff import is_text_with_nul
from sdi.ingest.unpack import is_zip, unpack_zip
from sdi.settings import Settings

__all__ = ["RESERVED_PREFIX", "SUPPORTED_FORMATS", "open_source", "pg_type_of"]

LOGGER = logging.getLogger(__name__)

#: What :func:`open_source` reads, as told to users when a file is refused.
SUPPORTED_FORMATS: tuple[str, ...] = (
    "zipped Shapefile (.zip holding .shp, .shx, .dbf and .prj)",
    "Shapefile (.shp with its .shx, .dbf and .prj beside it)",
    "GeoPackage (.gpkg)",
    "GeoJSON (.geojson, .json)",
    "CSV with longitude/latitude or Hong Kong 1980 easting/northing columns "
    "(.csv, .tsv)",
    "Esri File Geodatabase (a zipped .gdb folder)",
    "a zip holding one of these",
)

#: Attribute names starting with this (in any case) belong to sdi.
RESERVED_PREFIX = "_sdi_"
#: Column names every PostgreSQL table already has; a table cannot add them.
_SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})

Kind = Literal["shapefile", "gpkg", "geojson", "csv", "filegdb"]

_DRIVERS: dict[Kind, str] = {
    "shapefile": "ESRI Shapefile",
    "gpkg": "GPKG",
    "geojson": "GeoJSON",
    "csv": "CSV",
    "filegdb": "OpenFileGDB",
}
_LABELS: dict[Kind, str] = {
    "shapefile": "Shapefile",
    "gpkg": "GeoPackage",
    "geojson": "GeoJSON",
    "csv": "CSV",
    "filegdb": "File Geodatabase",
}
_MULTI_LAYER: frozenset[Kind] = frozenset({"gpkg", "filegdb"})

_FIONA_TO_PG: dict[str, str] = {
    "str": "text",
    "int": "bigint",
    "int16": "bigint",
    "int32": "bigint",
    "int64": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "date": "date",
    "datetime": "timestamp",
    "time": "time",
}

_SHP_MAGIC = b"\x00\x00\x27\x0a"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
_GDB_CATALOG = "a00000001.gdbtable"
_TEXT_SUFFIXES = frozenset({".csv", ".tsv"})
_SHP_PARTS = {".shx": "its index", ".dbf": "its attribute table"}

_FAMILIES: dict[str, str] = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "MultiLineString": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
    "GeometryCollection": "collection",
}

# Hong Kong 1980 Grid covers the territory with a generous margin.
_HK_EASTING = (790_000.0, 880_000.0)
_HK_NORTHING = (790_000.0, 860_000.0)
_INT64 = (-(2**63), 2**63 - 1)


def pg_type_of(fiona_type: str) -> str:
    """The PostgreSQL type (one of ``PG_TYPES``) of a fiona field type."""
    base = fiona_type.split(":", 1)[0].strip().lower()
    return _FIONA_TO_PG.get(base, "text")


# -- finding the dataset ------------------------------------------------------


@dataclass(frozen=True)
class _Dataset:
    kind: Kind
    path: Path
    name: str  # as shown to the user: file name, or path inside the zip


def _unsupported(what: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"{what} is not in a format sdi reads. Supported: "
        + "; ".join(SUPPORTED_FORMATS)
        + "."
    )


def _is_gdb_dir(path: Path) -> bool:
    return path.is_dir() and (
        path.suffix.lower() == ".gdb"
        or any(p.name.lower() == _GDB_CATALOG for p in path.iterdir())
    )


def _sniff(path: Path) -> Kind | Literal["zip"] | None:
    """The format of ``path`` judged by its content (and for text, its name)."""
    if path.is_dir():
        return "filegdb" if _is_gdb_dir(path) else None
    with path.open("rb") as fh:
        head = fh.read(4096)
    suffix = path.suffix.lower()
    if is_zip(path):
        return "zip"
    if head.startswith(_SQLITE_MAGIC):
        return "gpkg" if head[68:72] in _GPKG_IDS or suffix == ".gpkg" else None
    if head.startswith(_SHP_MAGIC):
        return "shapefile"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        if suffix == ".geojson" or (b'"type"' in head and b"Feature" in head):
            return "geojson"
        return None
    if suffix in _TEXT_SUFFIXES and (b"\x00" not in head or is_text_with_nul(head)):
        return "csv"  # a NUL is refused by name later (check_no_nul)
    return None


def _locate(
    path: Path,
    *,
    work_dir: Path,
    settings: Settings,
    layer: str | None,
    depth: int = 0,
) -> tuple[_Dataset, str | None]:
    """The dataset to read (unpacking zips), and the layer still to choose."""
    if not path.exists():
        raise IngestError(f"{path.name} does not exist.")
    if path.is_file():
        size = path.stat().st_size
        if size == 0:
            raise IngestError(f"{path.name} is empty (0 bytes).")
        if size > settings.max_upload_bytes:
            raise TooLargeError(
                f"{path.name} is {size} bytes, over the limit of "
                f"{settings.max_upload_bytes} bytes."
            )
    kind = _sniff(path)
    if kind == "zip" or (kind is None and path.suffix.lower() == ".zip"):
        dest = Path(tempfile.mkdtemp(prefix="unpacked-", dir=work_dir))
        files = unpack_zip(path, dest, settings=settings)
        return _choose(
            dest,
            files,
            archive=path.name,
            work_dir=work_dir,
            settings=settings,
            layer=layer,
            depth=depth,
        )
    if kind is None:
        if path.suffix.lower() in (".dbf", ".shx", ".prj", ".cpg"):
            raise IngestError(
                f"{path.name} is only one part of a Shapefile; upload the .shp, "
                ".shx, .dbf and .prj files together in one zip."
            )
        raise _unsupported(path.name)
    return _Dataset(kind, path, path.name), layer


def _choose(
    root: Path,
    files: list[Path],
    *,
    archive: str,
    work_dir: Path,
    settings: Settings,
    layer: str | None,
    depth: int,
) -> tuple[_Dataset, str | None]:
    """Pick the dataset among the files unpacked from a zip."""

    def shown(p: Path) -> str:
        return p.relative_to(root).as_posix()

    gdbs = sorted({p.parent for p in files if p.name.lower() == _GDB_CATALOG})
    rest = [p for p in files if not any(p.is_relative_to(g) for g in gdbs)]
    found: list[_Dataset] = [_Dataset("filegdb", g, shown(g)) for g in gdbs]
    csvs: list[_Dataset] = []
    zips: list[Path] = []
    stems: set[tuple[Path, str]] = set()
    for p in sorted(rest):
        suffix = p.suffix.lower()
        kind = _sniff(p) if p.stat().st_size else None
        if suffix == ".shp":
            found.append(_Dataset("shapefile", p, shown(p)))
            stems.add((p.parent, p.stem.casefold()))
        elif kind == "gpkg":
            found.append(_Dataset("gpkg", p, shown(p)))
        elif kind == "geojson" and suffix in (".geojson", ".json"):
            found.append(_Dataset("geojson", p, shown(p)))
        elif kind == "csv" and suffix == ".csv":
            csvs.append(_Dataset("csv", p, shown(p)))
        elif kind == "zip":
            zips.append(p)
    # CSV files next to spatial data are usually data dictionaries.
    candidates = found or csvs
    if not candidates:
        orphans = [
            p
            for p in rest
            if p.suffix.lower() in (".dbf", ".shx")
            and (p.parent, p.stem.casefold()) not in stems
        ]
        if orphans:
            raise IngestError(
                f"{archive} holds a Shapefile without its .shp file (found "
                f"{', '.join(shown(p) for p in orphans)}); put the .shp, .shx, "
                ".dbf and .prj files in the zip together."
            )
        if len(zips) == 1 and depth == 0:
            return _locate(
                zips[0],
                work_dir=work_dir,
                settings=settings,
                layer=layer,
                depth=depth + 1,
            )
        listing = ", ".join(shown(p) for p in sorted(files)[:10])
        raise _unsupported(f"{archive} (it holds: {listing})")
    if len(candidates) == 1:
        return candidates[0], layer
    if layer is not None:
        wanted = layer.casefold()
        for ds in candidates:
            if wanted in (ds.name.casefold(), ds.path.stem.casefold()):
                return ds, None
    names = ", ".join(f"{ds.path.stem} ({_LABELS[ds.kind]})" for ds in candidates)
    choice = f"No dataset in it is called {layer!r}. " if layer is not None else ""
    raise IngestError(
        f"{archive} holds several datasets: {names}. {choice}Choose one with "
        "--source-layer NAME, or upload them one per zip."
    )


# -- GDAL messages ------------------------------------------------------------


class _GdalMessages(logging.Handler):
    """Collects the errors and warnings GDAL reports through fiona's loggers.

    GDAL often reports a damaged record as an error message and returns the
    feature anyway (without its geometry); fiona only logs that message.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.errors: list[str] = []
        self.warnings: Counter[str] = Counter()
        self.undecodable = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            self.errors.append(message)
        elif message.startswith("Failed to decode"):
            self.undecodable += 1
        else:
            self.warnings[message] += 1

    def __enter__(self) -> _GdalMessages:
        logging.getLogger("fiona").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("fiona").removeHandler(self)


# -- attribute values ---------------------------------------------------------

ColumnFn = Callable[[Sequence[Any]], list[Any]]
_INT_RE = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_TIME_RE = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_BOOL_WORDS = frozenset({"true", "false", "yes", "no"})


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        out = v
    elif isinstance(v, float):
        if not v.is_integer():
            raise ValueError(v)
        out = int(v)
    else:
        text = str(v).strip()
        if not _INT_RE.fullmatch(text):
            raise ValueError(v)
        out = int(text)
    if not _INT64[0] <= out <= _INT64[1]:
        raise ValueError(v)
    return out


def _to_float(v: Any) -> float:
    if isinstance(v, int | float):
        return float(v)
    return float(str(v).strip())


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        if v in (0, 1):
            return bool(v)
        raise ValueError(v)
    text = str(v).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(v)


def _to_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v).strip()[:10])


def _to_timestamp(v: Any) -> dt.datetime:
    """A naive timestamp; aware values are converted to UTC first."""
    if isinstance(v, dt.datetime):
        value = v
    elif isinstance(v, dt.date):
        value = dt.datetime(v.year, v.month, v.day)
    else:
        value = dt.datetime.fromisoformat(str(v).strip())
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _to_time(v: Any) -> dt.time:
    if isinstance(v, dt.time):
        return v.replace(tzinfo=None)
    return dt.time.fromisoformat(str(v).strip()).replace(tzinfo=None)


def _to_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list | tuple | dict):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "bigint": _to_int,
    "double precision": _to_float,
    "boolean": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
    "time": _to_time,
    "text": _to_text,
}
_PYTHON_TYPES: dict[str, type] = {
    "bigint": int,
    "double precision": float,
    "boolean": bool,
    "text": str,
}


def _column_fn(name: str, pg_type: str, bad: Counter[str], *, csv: bool) -> ColumnFn:
    """A function converting one column of a batch to the field's type.

    Values that cannot be converted become None and are counted in ``bad``.
    For CSV, an empty string means "no value".
    """
    parse = _PARSERS[pg_type]
    expected = _PYTHON_TYPES.get(pg_type)

    def convert(values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for v in values:
            if v is None or (csv and v == ""):
                append(None)
            elif expected is not None and type(v) is expected:
                if isinstance(v, str) and "\x00" in v:
                    # PostgreSQL text cannot hold NUL characters.
                    v = v.replace("\x00", "")
                append(v)
            else:
                try:
                    append(parse(v))
                except (ValueError, TypeError, OverflowError):
                    append(None)
                    bad[name] += 1
        return out

    return convert


@dataclass
class _CsvColumn:
    """What the values of one CSV column could be, narrowed row by row."""

    name: str
    candidates: list[str] = field(
        default_factory=lambda: [
            "bigint",
            "double precision",
            "boolean",
            "date",
            "timestamp",
            "time",
        ]
    )
    seen: bool = False

    def observe(self, value: str) -> None:
        text = value.strip()
        if not text:
            return
        self.seen = True
        self.candidates = [c for c in self.candidates if _csv_fits(c, text)]

    @property
    def pg_type(self) -> str:
        return self.candidates[0] if self.seen and self.candidates else "text"


def _csv_fits(pg_type: str, text: str) -> bool:
    try:
        if pg_type == "bigint":
            return bool(_INT_RE.fullmatch(text)) and _INT64[0] <= int(text) <= _INT64[1]
        if pg_type == "double precision":
            return bool(_FLOAT_RE.fullmatch(text))
        if pg_type == "boolean":
            return text.casefold() in _BOOL_WORDS
        if pg_type == "date":
            return bool(_DATE_RE.fullmatch(text)) and bool(dt.date.fromisoformat(text))
        if pg_type == "timestamp":
            return bool(_TIMESTAMP_RE.fullmatch(text)) and bool(
                dt.datetime.fromisoformat(text)
            )
        if pg_type == "time":
            return bool(_TIME_RE.fullmatch(text)) and bool(dt.time.fromisoformat(text))
    except ValueError:
        return False
    return False


# -- geometries ---------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.int64]

_BUILD_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    shapely.errors.GEOSException,
)


class _Ragged:
    """The geometries of one type in a chunk, flattened as they are read.

    Coordinates go straight into a float array and the nesting into offset
    lists (shapely's ragged-array layout), so fiona's coordinate tuples are
    garbage at once: holding them for a whole batch makes Python's cyclic
    garbage collector the slowest part of reading. One subclass per nesting
    depth keeps the per-feature work small.
    """

    __slots__ = ("coords", "count", "dims", "kind", "offsets", "positions")
    depth = 0

    def __init__(self, kind: shapely.GeometryType) -> None:
        self.kind = kind
        self.coords = array("d")
        self.dims = 0  # 2 or 3 floats per coordinate, fixed by the first geometry
        self.count = 0  # coordinates so far
        self.offsets: list[list[int]] = [[0] for _ in range(self.depth)]  # inner first
        self.positions: list[int] = []  # positions of the geometries in the chunk

    def add(self, position: int, coordinates: Any) -> bool:
        """Append one geometry; False (and nothing kept) if it is irregular."""
        raise NotImplementedError

    def _settle(self, before: int, count: int, marks: tuple[int, ...]) -> bool:
        """Accept a geometry whose float count did not match, or undo it.

        The first geometry fixes the dimension; later ones must agree.
        """
        added = len(self.coords) - before
        n = count - self.count
        if self.dims == 0 and count >= 0 and n > 0 and added in (2 * n, 3 * n):
            self.dims = added // n
            return True
        del self.coords[before:]
        for offsets, mark in zip(self.offsets, marks, strict=True):
            del offsets[mark:]
        return False

    def build(self, unbuilt: list[int], first: int) -> ObjectArray:
        """The shapely geometries, in the order they were added.

        When GEOS refuses the batch (a line with one point, say), each
        geometry is built on its own and the ones it refuses become None,
        their feature numbers noted in ``unbuilt``.
        """
        n = len(self.positions)
        xy = np.frombuffer(self.coords, dtype=np.float64).reshape(-1, self.dims or 2)
        if xy.shape[1] != 2:
            xy = np.ascontiguousarray(xy[:, :2])
        if self.depth == 0:
            return np.asarray(shapely.points(xy), dtype=object)
        offsets = tuple(np.asarray(o, dtype=np.int64) for o in self.offsets)
        try:
            return np.asarray(
                shapely.from_ragged_array(self.kind, xy, offsets), dtype=object
            )
        except _BUILD_ERRORS:
            pass
        out: ObjectArray = np.full(n, None, dtype=object)
        for j in range(n):
            coords, sub = _ragged_slice(xy, offsets, j)
            try:
                out[j] = shapely.from_ragged_array(self.kind, coords, sub)[0]
            except _BUILD_ERRORS:
                unbuilt.append(first + self.positions[j])
        return out


class _Points(_Ragged):
    __slots__ = ()

    def add(self, position: int, coordinates: Any) -> bool:
        coords = self.coords
        before = len(coords)
        try:
            if len(coordinates) < 2:
                return False
            coords.extend(coordinates)
        except (TypeError, ValueError):
            return self._settle(before, -1, ())
        if len(coords) - before != self.dims and not self._settle(
            before, self.count + 1, ()
        ):
            return False
        self.count += 1
        self.positions.append(position)
        return True


class _Depth1(_Ragged):
    __slots__ = ()
    depth = 1

    def add(self, position: int, coordinates: Any) -> bool:
        coords = self.coords
        before = len(coords)
        offsets = self.offsets[0]
        try:
            coords.extend(_flatten(coordinates))
        except (TypeError, ValueError):
            return self._settle(before, -1, (len(offsets),))
        count = self.count + len(coordinates)
        if len(coords) - before != self.dims * (
            count - self.count
        ) and not self._settle(before, count, (len(offsets),)):
            return False
        offsets.append(count)
        self.count = count
        self.positions.append(position)
        return True


class _Depth2(_Ragged):
    __slots__ = ()
    depth = 2

    def add(self, position: int, coordinates: Any) -> bool:
        coords = self.coords
        extend = coords.extend
        before = len(coords)
        inner, outer = self.offsets
        marks = (len(inner), len(outer))
        count = self.count
        try:
            for seq in coordinates:
                extend(_flatten(seq))
                count += len(seq)
                inner.append(count)
        except (TypeError, ValueError):
            return self._settle(before, -1, marks)
        if len(coords) - before != self.dims * (
            count - self.count
        ) and not self._settle(before, count, marks):
            return False
        outer.append(len(inner) - 1)
        self.count = count
        self.positions.append(position)
        return True


class _Depth3(_Ragged):
    __slots__ = ()
    depth = 3

    def add(self, position: int, coordinates: Any) -> bool:
        coords = self.coords
        extend = coords.extend
        before = len(coords)
        inner, middle, outer = self.offsets
        marks = (len(inner), len(middle), len(outer))
        count = self.count
        try:
            for part in coordinates:
                for seq in part:
                    extend(_flatten(seq))
                    count += len(seq)
                    inner.append(count)
                middle.append(len(inner) - 1)
        except (TypeError, ValueError):
            return self._settle(before, -1, marks)
        if len(coords) - before != self.dims * (
            count - self.count
        ) and not self._settle(before, count, marks):
            return False
        outer.append(len(middle) - 1)
        self.count = count
        self.positions.append(position)
        return True


_flatten = itertools.chain.from_iterable
_Properties = fiona.model.Properties

# geometry type -> how to collect it
_RAGGED_TYPES: dict[str, tuple[type[_Ragged], shapely.GeometryType]] = {
    "Point": (_Points, shapely.GeometryType.POINT),
    "LineString": (_Depth1, shapely.GeometryType.LINESTRING),
    "MultiPoint": (_Depth1, shapely.GeometryType.MULTIPOINT),
    "Polygon": (_Depth2, shapely.GeometryType.POLYGON),
    "MultiLineString": (_Depth2, shapely.GeometryType.MULTILINESTRING),
    "MultiPolygon": (_Depth3, shapely.GeometryType.MULTIPOLYGON),
}


def _ragged_slice(
    xy: FloatArray, offsets: tuple[IntArray, ...], j: int
) -> tuple[FloatArray, tuple[IntArray, ...]]:
    """Geometry j of a ragged array, as a ragged array of one."""
    lo, hi = j, j + 1
    sub: list[IntArray] = []
    for level in reversed(offsets):
        sub.insert(0, level[lo : hi + 1] - level[lo])
        lo, hi = int(level[lo]), int(level[hi])
    return xy[lo:hi], tuple(sub)


def _build_one(geom: Any) -> shapely.Geometry | None:
    """One geometry the slow way, for what the ragged arrays cannot hold."""
    built = shapely.force_2d(shapely.geometry.shape(geom))
    return None if built.is_empty else built


@dataclass
class _Chunk:
    """Consecutive features as read: geometries flattened, attribute tuples."""

    first: int  # number of its first feature (1-based)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    groups: dict[str, _Ragged | None] = field(default_factory=dict)
    odd: list[tuple[int, Any]] = field(default_factory=list)  # (position, geometry)
    xy: list[tuple[Any, Any]] | None = None  # CSV coordinate values


_MISSING: Any = object()


# -- the source ---------------------------------------------------------------


@dataclass
class _Plan:
    """How to turn a fiona feature into a row and a geometry."""

    names: list[str]  # attribute names read from the features, in field order
    columns: list[tuple[int, ColumnFn]]  # conversions needed, by column index
    xy: tuple[str, str] | None = None  # CSV coordinate columns, else None


class _FionaSource:
    """A :class:`Source` over an open fiona collection."""

    def __init__(
        self,
        collection: Any,
        info: SourceInfo,
        plan: _Plan,
        *,
        name: str,
        crs: CRS,
        transformer: Transformer | None,
        target_srid: int,
        bad: Counter[str],
        reopen: Callable[..., Any] | None = None,
        shapes: ShapeRecords | None = None,
    ) -> None:
        self.info = info
        self._shapes = shapes  # a Shapefile's records: null shape or damaged?
        self._collection = collection
        self._reopen = reopen
        self._rescue: Any = None  # a second collection, without date fields
        self._temporal = [
            f.name for f in info.fields if f.pg_type in ("date", "timestamp", "time")
        ]
        self._bad_dates: list[int] = []
        #: (start, stop) of the features this source reads; None: all of them.
        self.feature_range: tuple[int, int] | None = None
        #: How another process can open the same dataset (set by ``_open``).
        self.partition: tuple[Any, Any, Path] | None = None
        self._plan = plan
        self._name = name
        self._crs = crs
        self._transformer = transformer
        self._target_srid = target_srid
        self._target_geographic = CRS.from_epsg(target_srid).is_geographic
        self._bad = bad
        self._types: dict[str, int] = {}  # geometry type -> first feature number
        self._unbuilt: list[int] = []
        self._bad_xy = 0
        names = plan.names
        if not names:
            self._getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = lambda d: ()
        elif len(names) == 1:
            only = names[0]
            self._getter = lambda d: (d[only],)
        else:
            self._getter = operator.itemgetter(*names)

    def batches(self, size: int = 10_000) -> Iterator[Batch]:
        """Yield the features in batches; raise ``IngestError`` on a bad record.

        While fiona reads a chunk (holding the GIL), a worker thread builds,
        reprojects and encodes the previous one (PROJ and GEOS release it).
        Large files in formats with random access are read by several
        processes at once (:func:`_parallel_batches`).
        """
        parts = self._parts()
        if parts > 1:
            yield from _parallel_batches(self, parts, size)
            return
        total = 0
        with (
            fiona.Env(),
            _GdalMessages() as gdal,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdi-wkb") as pool,
        ):
            queued: deque[
                tuple[Future[list[bytes | None]], list[tuple[Any, ...]], int]
            ] = deque()
            for chunk in self._read(max(1, size), gdal):
                self._check_types(chunk)
                geometries = pool.submit(self._geometries, chunk)
                queued.append((geometries, self._rows(chunk.rows), chunk.first))
                total += len(chunk.rows)
                if len(queued) > 1:
                    done, rows, first = queued.popleft()
                    yield Batch(wkb=done.result(), rows=rows, first=first)
            while queued:
                done, rows, first = queued.popleft()
                yield Batch(wkb=done.result(), rows=rows, first=first)
            self._finish_warnings(gdal)
        if total == 0 and self.feature_range is None:
            raise IngestError(f"{self._name} has no features.")

    def _parts(self) -> int:
        """How many processes should read this file (1: read it here)."""
        count = self.info.feature_count or 0
        if (
            self.partition is None
            or self.feature_range is not None
            or self.info.format not in _RANDOM_ACCESS
            or self._plan.xy is not None
            or count < _PARALLEL_MIN_FEATURES
        ):
            return 1
        return max(1, min(_READ_PROCESSES, os.cpu_count() or 1))

    def _read(self, size: int, gdal: _GdalMessages) -> Iterator[_Chunk]:
        """The features in chunks of ``size``, flattened as they are read."""
        if self.feature_range is None:
            it = iter(self._collection)
            number = 0
        else:
            start, stop = self.feature_range
            it = iter(self._collection.filter(start, stop))
            number = start
        getter = self._getter
        xy_names = self._plan.xy
        chunk = _Chunk(first=number + 1, xy=[] if xy_names else None)
        pending: str | None = None
        feature: Any = None
        while True:
            previous = feature
            rescued = False
            try:
                feature = next(it)
            except StopIteration:
                break
            except Exception as exc:  # fiona and GDAL raise many kinds mid-file
                feature = self._rescue_feature(number + 1, previous, exc)
                rescued = True
            number += 1
            geom = feature.geometry
            if gdal.errors:
                message = gdal.errors[0]
                gdal.errors.clear()
                if geom is None:
                    raise self._bad_record(number, message)
                # Some drivers (GeoJSON) parse every record on the first read;
                # the damaged one is then the first that lost its geometry.
                pending = pending or message
            elif pending is not None and geom is None:
                raise self._bad_record(number, pending)
            if (
                geom is None
                and self._shapes is not None
                and not self._shapes.is_null_shape(int(feature.id))
            ):
                raise self._bad_record(number, "its geometry record is damaged")
            props = feature.properties  # _property_dict, inlined: once per feature
            props = props._data if type(props) is _Properties else dict(props)
            if rescued:
                props = {**props, **dict.fromkeys(self._temporal)}
            position = len(chunk.rows)
            chunk.rows.append(getter(props))
            if chunk.xy is not None and xy_names is not None:
                chunk.xy.append((props[xy_names[0]], props[xy_names[1]]))
            elif geom is not None:
                gtype = geom.type
                group = chunk.groups.get(gtype, _MISSING)
                if group is _MISSING:
                    spec = _RAGGED_TYPES.get(gtype)
                    group = chunk.groups[gtype] = spec[0](spec[1]) if spec else None
                if group is None or not group.add(position, geom.coordinates):
                    chunk.odd.append((position, geom))
            if position + 1 >= size:
                yield chunk
                chunk = _Chunk(first=number + 1, xy=[] if xy_names else None)
        if chunk.rows:
            yield chunk
        if pending is not None:
            raise IngestError(
                f"{self._name} could not be read: GDAL reported {pending!r}. "
                "The file is probably damaged; nothing was loaded."
            )

    def _rescue_feature(self, number: int, previous: Any, exc: Exception) -> Any:
        """Read again, without its dates, a Shapefile record with a bad date.

        fiona raises on an impossible date (month 13) in a .dbf and moves on
        to the next record; the record itself is fetched by its FID from a
        second collection that skips the date fields, which become None.
        Any other failure is a damaged record.
        """
        if not (
            isinstance(exc, ValueError)
            and self._temporal
            and self._reopen is not None
            and self.info.format == "ESRI Shapefile"
        ):
            raise self._bad_record(number, str(exc)) from exc
        try:
            fid = 0 if previous is None else int(previous.id) + 1
            if self._rescue is None:
                self._rescue = self._reopen(ignore_fields=self._temporal)
            feature = self._rescue[fid]
        except Exception as again:  # the record is damaged beyond its dates
            raise self._bad_record(number, str(exc)) from again
        self._bad_dates.append(number)
        LOGGER.info("%s: feature %d has a bad date (%s)", self._name, number, exc)
        return feature

    def _bad_record(self, number: int, message: str) -> IngestError:
        return IngestError(
            f"Feature {number} of {self._name} could not be read: "
            f"{message.rstrip('.')}. The file is probably damaged or truncated; "
            "nothing was loaded."
        )

    def _rows(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not self._plan.columns or not rows:
            return rows
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for index, convert in self._plan.columns:
            columns[index] = convert(columns[index])
        return list(zip(*columns, strict=True))

    def _check_types(self, chunk: _Chunk) -> None:
        """Refuse a file mixing points, lines and polygons (across chunks)."""
        for gtype, group in chunk.groups.items():
            if group is not None and group.positions:
                self._types.setdefault(gtype, chunk.first + group.positions[0])
        for position, geom in chunk.odd:
            self._types.setdefault(str(geom.type), chunk.first + position)
        families = {_FAMILIES.get(t, t) for t in self._types}
        if len(families) > 1:
            found = ", ".join(
                f"{t} (first at feature {n})"
                for t, n in sorted(self._types.items(), key=lambda kv: kv[1])
            )
            raise IngestError(
                f"{self._name} mixes geometry types: {found}. A layer holds one "
                "kind of geometry (points, lines or polygons); split the file by "
                "geometry type and upload each part as its own layer."
            )

    def _geometries(self, chunk: _Chunk) -> list[bytes | None]:
        """2D ISO WKB in the storage CRS of a chunk's geometries (or None)."""
        if chunk.xy is not None:
            built = self._csv_points(chunk.xy)
        else:
            built = np.full(len(chunk.rows), None, dtype=object)
            for group in chunk.groups.values():
                if group is not None and group.positions:
                    index = np.asarray(group.positions, dtype=np.int64)
                    built[index] = group.build(self._unbuilt, chunk.first)
            for position, geom in chunk.odd:
                try:
                    built[position] = _build_one(geom)
                except _BUILD_ERRORS:
                    self._unbuilt.append(chunk.first + position)
        return self._to_wkb(built, chunk.first)

    def _csv_points(self, values: list[tuple[Any, Any]]) -> ObjectArray:
        xs, bad_x = _parse_floats([v[0] for v in values])
        ys, bad_y = _parse_floats([v[1] for v in values])
        self._bad_xy += int(np.count_nonzero(bad_x | bad_y))
        ok = np.isfinite(xs) & np.isfinite(ys)
        out: ObjectArray = np.full(len(values), None, dtype=object)
        if ok.any():
            out[ok] = shapely.points(np.column_stack((xs[ok], ys[ok])))
        return out

    def _to_wkb(self, geoms: ObjectArray, first: int) -> list[bytes | None]:
        empty = shapely.is_empty(geoms)
        if empty.any():
            geoms[empty] = None
        source = geoms
        transformer = self._transformer
        if transformer is not None:

            def reproject(
                x: FloatArray, y: FloatArray
            ) -> tuple[FloatArray, FloatArray]:
                return transformer.transform(x, y, errcheck=False)

            geoms = shapely.transform(geoms, reproject, interleaved=False)
        self._check_bounds(geoms, source, first)
        wkb = shapely.to_wkb(geoms, output_dimension=2, flavor="iso")
        return wkb.tolist()  # type: ignore[no-any-return]

    def _check_bounds(
        self, geoms: ObjectArray, source: ObjectArray, first: int
    ) -> None:
        bounds = shapely.bounds(geoms)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(bounds).any(axis=1)
            if self._target_geographic:
                bad |= (bounds[:, 1] < -90.000001) | (bounds[:, 3] > 90.000001)
                bad |= (bounds[:, 0] < -360) | (bounds[:, 2] > 360)
        if not bad.any():
            return
        i = int(np.flatnonzero(bad)[0])
        x0, y0, x1, y1 = shapely.bounds(source[i]).tolist()
        raise IngestError(
            f"Feature {first + i} of {self._name} has coordinates "
            f"({x0:.6g}, {y0:.6g}, {x1:.6g}, {y1:.6g}) that are not valid in "
            f"{_crs_label_short(self._crs)} (or cannot be transformed to "
            f"EPSG:{self._target_srid}). The CRS is probably wrong: pass the "
            "right one, e.g. --crs EPSG:2326 for Hong Kong 1980 Grid."
        )

    def _finish_warnings(self, gdal: _GdalMessages) -> None:
        warnings = self.info.warnings
        for name, count in self._bad.items():
            pg_type = next(f.pg_type for f in self.info.fields if f.name == name)
            warnings.append(
                f"Field {name!r}: {count} value(s) could not be read as "
                f"{pg_type} and were stored empty."
            )
        if self._unbuilt:
            shown = ", ".join(str(n) for n in self._unbuilt[:5])
            warnings.append(
                f"{len(self._unbuilt)} geometry(ies) could not be built and were "
                f"stored empty (features {shown}"
                f"{', ...' if len(self._unbuilt) > 5 else ''})."
            )
        if self._bad_dates:
            shown = ", ".join(str(n) for n in self._bad_dates[:5])
            more = ", ..." if len(self._bad_dates) > 5 else ""
            warnings.append(
                f"{len(self._bad_dates)} feature(s) have an impossible date or "
                f"time (features {shown}{more}); their date and time fields "
                "were stored empty."
            )
        if self._bad_xy:
            warnings.append(
                f"{self._bad_xy} row(s) have coordinates that are not numbers; "
                "they were stored without a geometry."
            )
        if gdal.undecodable:
            warnings.append(
                f"{gdal.undecodable} text value(s) could not be decoded as "
                f"{self.info.encoding} and were stored empty."
            )
        for message, count in list(gdal.warnings.items())[:10]:
            times = f" ({count} times)" if count > 1 else ""
            warnings.append(f"GDAL: {message}{times}")

    def close(self) -> None:
        """Close the file (and the second handle used to rescue bad dates)."""
        if self._rescue is not None:
            self._rescue.close()
        if self._shapes is not None:
            self._shapes.close()
        self._collection.close()


#: Formats whose features fiona can start reading at any index cheaply.
_RANDOM_ACCESS = frozenset({"ESRI Shapefile", "GPKG", "OpenFileGDB"})
#: Below this, starting reader processes costs more than it saves.
_PARALLEL_MIN_FEATURES = 100_000
_READ_PROCESSES = 2


def _parallel_batches(source: _FionaSource, parts: int, size: int) -> Iterator[Batch]:
    """Read ``source`` in ``parts`` processes, each a range of its features.

    fiona builds Python objects for every feature while holding the GIL, so
    threads cannot share the work; processes can. Each is a fresh interpreter
    (``python -c``, independent of how this process was started) that reopens
    the dataset this process already unpacked and writes finished batches,
    pickled, to its stdout; a thread per process reads them. Batches carry
    their feature numbers, so their order does not matter. A reader's
    ``IngestError`` is re-raised here; the readers are stopped on any exit.
    """
    assert source.partition is not None
    dataset, opts, scratch = source.partition
    count = source.info.feature_count or 0
    bounds = [(i * count // parts, (i + 1) * count // parts) for i in range(parts)]
    results: queue_module.Queue[tuple[str, Any]] = queue_module.Queue(maxsize=4 * parts)
    readers: list[subprocess.Popen[bytes]] = []
    threads: list[threading.Thread] = []
    try:
        for start, stop in bounds:
            reader = subprocess.Popen(
                [sys.executable, "-c", _PART_MAIN],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            readers.append(reader)
            assert reader.stdin is not None
            pickle.dump((dataset, opts, scratch, start, stop, size), reader.stdin)
            reader.stdin.close()
            thread = threading.Thread(
                target=_relay,
                args=(reader, results),
                name="sdi-read-relay",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        finished = 0
        while finished < parts:
            kind, payload = results.get()
            if kind == "batch":
                yield payload
            elif kind == "error":
                raise payload
            else:
                finished += 1
                source.info.warnings.extend(
                    w for w in payload if w not in source.info.warnings
                )
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
        # Unblock relays waiting to put into a full queue, then let them end.
        while any(t.is_alive() for t in threads):
            with contextlib.suppress(queue_module.Empty):
                results.get(timeout=0.1)
        for reader in readers:
            reader.wait()


_PART_MAIN = "from sdi.ingest.read import _part_main; _part_main()"


def _relay(reader: subprocess.Popen[bytes], results: queue_module.Queue[Any]) -> None:
    """Move a reader process's messages into ``results``; report how it ended."""
    assert reader.stdout is not None
    ended = False
    try:
        while True:
            # Our own child process over a private pipe: trusted data.
            message = pickle.load(reader.stdout)  # noqa: S301
            results.put(message)
            if message[0] in ("done", "error"):
                ended = True
                return
    except (EOFError, pickle.UnpicklingError, OSError):
        pass
    finally:
        if not ended:
            code = reader.wait()
            results.put(
                ("error", IngestError(f"A reader process ended early (code {code})."))
            )


def _part_main() -> None:
    """Entry point of a reader process: features [start, stop) to stdout."""
    # The batches go to the original stdout; anything a library prints goes
    # to stderr instead of into the stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Sent by the parent process over a private pipe: trusted data.
    dataset, opts, scratch, start, stop, size = pickle.load(sys.stdin.buffer)  # noqa: S301

    def send(message: tuple[str, Any]) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        with fiona.Env():
            work = Path(tempfile.mkdtemp(prefix="part-", dir=scratch))
            source = _open_dataset(dataset, opts, work)
            source.feature_range = (start, stop)
            try:
                for batch in source.batches(size):
                    send(("batch", batch))
            finally:
                source.close()
        send(("done", source.info.warnings))
    except IngestError as exc:
        send(("error", exc))
    except Exception as exc:  # anything else would be lost with the process
        LOGGER.exception("reader process for features %d-%d failed", start, stop)
        send(("error", IngestError(f"Reading the file failed: {exc}")))


def _crs_label_short(crs: CRS) -> str:
    """``EPSG:nnnn`` or the CRS's name, for messages."""
    label = crs_label(crs)
    return label if label.startswith("EPSG:") else repr(crs.name)


def _parse_floats(values: list[Any]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Floats from text (NaN where empty or bad) and the mask of bad values."""
    try:
        return np.array(values, dtype=np.float64), np.zeros(len(values), dtype=bool)
    except (ValueError, TypeError):
        pass
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        try:
            out[i] = float(v)
        except (ValueError, TypeError):
            bad[i] = True
    return out, bad


def _property_dict(props: Any) -> dict[str, Any]:
    """A feature's properties as a plain dict.

    fiona 1.10's ``Properties.__getitem__`` copies the whole mapping on every
    access, which makes reading a wide table quadratic; its ``_data`` dict is
    the same content without the copying.
    """
    data = getattr(props, "_data", None)
    if isinstance(data, dict):
        return data
    return dict(props)


# -- opening ------------------------------------------------------------------


def _check_names(names: Sequence[str], what: str) -> None:
    reserved = [n for n in names if n.casefold().startswith(RESERVED_PREFIX)]
    if reserved:
        raise IngestError(
            f"{what} has attribute(s) named {', '.join(map(repr, reserved))}: names "
            f"starting with {RESERVED_PREFIX!r} are reserved for sdi. Rename them "
            "and upload again."
        )
    system = [n for n in names if n in _SYSTEM_COLUMNS]
    if system:
        raise IngestError(
            f"{what} has attribute(s) named {', '.join(map(repr, system))}: "
            "PostgreSQL uses these names for its own columns. Rename them (e.g. "
            f"{system[0] + '_'!r}) and upload again."
        )
    seen: dict[str, str] = {}
    for n in names:
        key = n.casefold()
        if key in seen:
            raise IngestError(
                f"{what} has attributes {seen[key]!r} and {n!r}, which differ only "
                "in letter case; GIS clients cannot tell them apart. Rename one "
                "and upload again."
            )
        seen[key] = n


def _sibling(path: Path, suffix: str) -> Path | None:
    want = (path.stem + suffix).casefold()
    for candidate in path.parent.iterdir():
        if candidate.name.casefold() == want and candidate.is_file():
            return candidate
    return None


def _shapefile_parts(shp: Path, name: str, work_dir: Path) -> tuple[Path, Path]:
    """The ``.shp`` to open (parts named as GDAL expects) and its ``.dbf``."""
    parts: dict[str, Path] = {}
    for suffix in (".shx", ".dbf", ".prj", ".cpg"):
        found = _sibling(shp, suffix)
        if found is not None:
            parts[suffix] = found
        elif suffix in _SHP_PARTS:
            raise IngestError(
                f"The Shapefile {name} is missing {shp.stem}{suffix} "
                f"({_SHP_PARTS[suffix]}). A Shapefile needs its .shp, .shx and "
                ".dbf files (and .prj) with the same name; upload them together "
                "in one zip."
            )
    lower = shp.suffix == ".shp"
    expected = {s: shp.with_name(shp.stem + (s if lower else s.upper())) for s in parts}
    if all(parts[s] == expected[s] for s in parts):
        return shp, parts[".dbf"]
    # Mixed-case extensions (roads.shp + roads.DBF) confuse GDAL; link them
    # under the names it looks for.
    link_dir = Path(tempfile.mkdtemp(prefix="shp-", dir=work_dir))
    target = link_dir / (shp.stem + ".shp")
    target.symlink_to(shp.resolve())
    for suffix, path in parts.items():
        (link_dir / (shp.stem + suffix)).symlink_to(path.resolve())
    return target, link_dir / (shp.stem + ".dbf")


def _choose_layer(ds: _Dataset, layer: str | None) -> str | None:
    """The layer to read in a GeoPackage or File Geodatabase."""
    try:
        layers = [str(x) for x in fiona.listlayers(ds.path)]
    except Exception as exc:  # fiona raises DriverError and CPLE_* types
        raise IngestError(
            f"{ds.name} could not be opened as a {_LABELS[ds.kind]}: {exc}"
        ) from exc
    if not layers:
        raise IngestError(f"{ds.name} holds no layers.")
    if layer is None:
        if len(layers) > 1:
            raise IngestError(
                f"{ds.name} has several layers: {', '.join(layers)}. Choose one "
                "with --source-layer NAME."
            )
        return layers[0]
    if layer in layers:
        return layer
    for candidate in layers:
        if candidate.casefold() == layer.casefold():
            return candidate
    raise IngestError(
        f"{ds.name} has no layer {layer!r}; its layers are: {', '.join(layers)}."
    )


@dataclass
class _Options:
    layer: str | None
    encoding: str | None
    crs: str | None
    x_field: str | None
    y_field: str | None
    target_srid: int


def _open_dataset(ds: _Dataset, opts: _Options, work_dir: Path) -> _FionaSource:
    warnings: list[str] = []
    path = ds.path
    encoding: str | None = None
    layer: str | None = None
    check_no_nul(ds.path, ds.kind, ds.name)
    if ds.kind == "shapefile":
        path, dbf = _shapefile_parts(ds.path, ds.name, work_dir)
        choice = detect_dbf_encoding(dbf, user_choice=opts.encoding)
        encoding = choice.encoding
        warnings.extend(choice.warnings)
        LOGGER.info("%s: encoding %s (from %s)", ds.name, encoding, choice.source)
    elif ds.kind == "csv":
        choice = detect_text_encoding(path, user_choice=opts.encoding)
        encoding = choice.encoding
        warnings.extend(choice.warnings)
    elif opts.encoding:
        warnings.append(
            f"The encoding {opts.encoding!r} was ignored: a {_LABELS[ds.kind]} "
            "stores text as UTF-8."
        )
    if ds.kind == "filegdb" and path.suffix.lower() != ".gdb":
        # GDAL only recognises a File Geodatabase folder by its .gdb name.
        link = Path(tempfile.mkdtemp(prefix="gdb-", dir=work_dir)) / f"{path.name}.gdb"
        link.symlink_to(path.resolve(), target_is_directory=True)
        path = link
        ds = dataclasses.replace(ds, path=link)
    if ds.kind in _MULTI_LAYER:
        layer = _choose_layer(ds, opts.layer)
    reopen = functools.partial(
        fiona.open, path, driver=_DRIVERS[ds.kind], layer=layer, encoding=encoding
    )
    try:
        collection = reopen()
    except Exception as exc:  # fiona raises DriverError and CPLE_* types
        raise IngestError(
            f"{ds.name} could not be opened as {_LABELS[ds.kind]}: {exc}"
        ) from exc
    try:
        return _make_source(collection, ds, opts, encoding, layer, warnings, reopen)
    except BaseException:
        collection.close()
        raise


def _make_source(
    collection: Any,
    ds: _Dataset,
    opts: _Options,
    encoding: str | None,
    layer: str | None,
    warnings: list[str],
    reopen: Callable[..., Any],
) -> _FionaSource:
    name = ds.name
    if (
        ds.kind not in _MULTI_LAYER
        and opts.layer is not None
        and opts.layer.casefold()
        not in (str(collection.name).casefold(), ds.path.stem.casefold())
    ):
        warnings.append(
            f"Layer {opts.layer!r} was asked for, but {name} holds one layer, "
            f"{collection.name!r}; that was read."
        )
    warnings += check_declared_crs(ds.kind, ds.path, collection.crs_wkt, opts.crs)
    schema = collection.schema
    props: dict[str, str] = dict(schema.get("properties") or {})
    geometry_type = str(schema.get("geometry") or "None")
    bad: Counter[str] = Counter()
    feature_count: int | None
    xy: tuple[str, str] | None = None
    if ds.kind == "csv":
        analysis = _analyse_csv(collection, props, opts, name)
        xy = analysis.xy
        fields = analysis.fields
        feature_count = analysis.count
        if xy is not None:
            crs, crs_warnings = analysis.crs, analysis.warnings
            geometry_type = "Point"
        else:
            crs, crs_warnings = resolve_crs(
                collection.crs_wkt, override=opts.crs, what=name
            )
        columns = [
            (i, _column_fn(f.name, f.pg_type, bad, csv=True))
            for i, f in enumerate(fields)
        ]
        names = [f.name for f in fields]
    else:
        if geometry_type == "None":
            raise IngestError(
                f"{name} has no geometry column; sdi publishes spatial layers only."
            )
        names = list(props)
        fields = [Field(n, pg_type_of(t)) for n, t in props.items()]
        columns = [
            (i, _column_fn(f.name, f.pg_type, bad, csv=False))
            for i, f in enumerate(fields)
            if _needs_conversion(f.pg_type)
        ]
        crs, crs_warnings = resolve_crs(
            collection.crs_wkt, override=opts.crs, what=name
        )
        feature_count = _count(collection)
        if feature_count == 0:
            raise IngestError(f"{name} has no features.")
    _check_names([f.name for f in fields], name)
    check_fields(fields, name)
    warnings.extend(crs_warnings)
    transformer = transformer_to(crs, opts.target_srid)
    if transformer is not None and is_ballpark(transformer):
        warnings.append(
            f"No datum transformation is known from {_crs_label_short(crs)} to "
            f"EPSG:{opts.target_srid}; positions may be off by up to hundreds of "
            "metres. Check the CRS."
        )
    info = SourceInfo(
        format=_DRIVERS[ds.kind],
        layer=layer if layer is not None else str(collection.name),
        crs=crs_label(crs),
        encoding=encoding,
        fields=fields,
        geometry_type=geometry_type,
        feature_count=feature_count,
        warnings=warnings,
    )
    plan = _Plan(names=names, columns=columns, xy=xy)
    return _FionaSource(
        collection,
        info,
        plan,
        name=name,
        crs=crs,
        transformer=transformer,
        target_srid=opts.target_srid,
        bad=bad,
        reopen=reopen,
        shapes=ShapeRecords.of(ds.path) if ds.kind == "shapefile" else None,
    )


def _needs_conversion(pg_type: str) -> bool:
    """Whether fiona's values for this type need converting for PostgreSQL.

    fiona returns int, float and bool as such; text is checked for NUL
    characters, and dates and times arrive as ISO strings.
    """
    return pg_type not in ("bigint", "double precision", "boolean")


def _count(collection: Any) -> int | None:
    try:
        return len(collection)
    except (TypeError, ValueError):
        return None


# -- CSV ----------------------------------------------------------------------

_LON = ("longitude", "lon", "lng", "long")
_LAT = ("latitude", "lat")
_EAST = ("easting", "east", "e")
_NORTH = ("northing", "north", "n")


@dataclass
class _CsvAnalysis:
    fields: list[Field]
    xy: tuple[str, str] | None
    crs: CRS
    count: int
    warnings: list[str]


def _find_column(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    folded = {c.strip().casefold(): c for c in columns}
    for w in wanted:
        if w in folded:
            return folded[w]
    return None


def _analyse_csv(
    collection: Any, props: dict[str, str], opts: _Options, name: str
) -> _CsvAnalysis:
    """Read a CSV once: column types, coordinate columns, their CRS, the count."""
    columns = list(props)
    pair: tuple[str, str] | None = None
    kind = "xy"
    if opts.x_field or opts.y_field:
        if not (opts.x_field and opts.y_field):
            raise IngestError("Give both --x-field and --y-field, or neither.")
        x = _find_column(columns, [opts.x_field.strip().casefold()])
        y = _find_column(columns, [opts.y_field.strip().casefold()])
        missing = [f for f, c in ((opts.x_field, x), (opts.y_field, y)) if c is None]
        if missing or x is None or y is None:
            raise IngestError(
                f"{name} has no column {missing[0]!r}; its columns are: "
                f"{', '.join(columns)}."
            )
        pair = (x, y)
    else:
        for xs, ys, k in (
            (_EAST, _NORTH, "hk"),
            (_LON, _LAT, "lonlat"),
            (("x",), ("y",), "xy"),
        ):
            x, y = _find_column(columns, xs), _find_column(columns, ys)
            if x is not None and y is not None:
                pair, kind = (x, y), k
                break
    if pair is None and str(collection.schema.get("geometry") or "None") == "None":
        raise IngestError(
            f"{name} has no coordinate columns (its columns are: "
            f"{', '.join(columns)}). Name them lon and lat (WGS 84) or easting "
            "and northing (Hong Kong 1980 Grid), or choose them with --x-field "
            "and --y-field."
        )
    stats = {c: _CsvColumn(c) for c in columns}
    ranges = {c: [np.inf, -np.inf] for c in (pair or ())}
    count = 0
    with _GdalMessages() as gdal:
        for feature in collection:
            count += 1
            values = _property_dict(feature.properties)
            for column, stat in stats.items():
                v = values.get(column)
                if v is None or (not stat.candidates and stat.seen):
                    continue
                stat.observe(str(v))
            for column, span in ranges.items():
                try:
                    number = float(values.get(column) or "nan")
                except ValueError:
                    continue
                if np.isfinite(number):
                    span[0] = min(span[0], number)
                    span[1] = max(span[1], number)
        if gdal.errors:
            raise IngestError(f"{name} could not be read: {gdal.errors[0]}")
    if count == 0:
        raise IngestError(f"{name} has no rows.")
    keep = [c for c in columns if pair is None or c not in pair]
    fields = [Field(c, stats[c].pg_type) for c in keep]
    warnings: list[str] = []
    if pair is None:
        return _CsvAnalysis(fields, None, CRS.from_epsg(4326), count, warnings)
    if opts.crs:
        crs, warnings = resolve_crs(None, override=opts.crs, what=name)
        return _CsvAnalysis(fields, pair, crs, count, warnings)
    (x_lo, x_hi), (y_lo, y_hi) = ranges[pair[0]], ranges[pair[1]]
    in_lonlat = x_lo >= -180 and x_hi <= 180 and y_lo >= -90 and y_hi <= 90
    in_hk = (
        _HK_EASTING[0] <= x_lo
        and x_hi <= _HK_EASTING[1]
        and _HK_NORTHING[0] <= y_lo
        and y_hi <= _HK_NORTHING[1]
    )
    seen = f"{pair[0]} from {x_lo:g} to {x_hi:g}, {pair[1]} from {y_lo:g} to {y_hi:g}"
    if not np.isfinite(x_lo) or not np.isfinite(y_lo):
        raise IngestError(
            f"{name}: the coordinate columns {pair[0]!r} and {pair[1]!r} hold no "
            "numbers."
        )
    if kind == "hk":
        ok, code = in_hk, 2326
    elif kind == "lonlat":
        ok, code = in_lonlat, 4326
    else:
        ok, code = in_lonlat or in_hk, 4326 if in_lonlat else 2326
    if not ok:
        expected = {
            "hk": "Hong Kong 1980 Grid easting/northing",
            "lonlat": "longitude/latitude",
        }.get(kind, "longitude/latitude or Hong Kong 1980 Grid easting/northing")
        raise IngestError(
            f"{name}: the coordinates ({seen}) are not {expected}. Pass the CRS "
            "they are in, e.g. --crs EPSG:2326, or check the columns."
        )
    return _CsvAnalysis(fields, pair, CRS.from_epsg(code), count, warnings)


# -- entry point --------------------------------------------------------------


def open_source(
    path: Path,
    *,
    work_dir: Path,
    settings: Settings,
    layer: str | None = None,
    encoding: str | None = None,
    crs: str | None = None,
    x_field: str | None = None,
    y_field: str | None = None,
    target_srid: int | None = None,
) -> contextlib.AbstractContextManager[Source]:
    """Open an uploaded file for reading; use as a context manager.

    ``path`` is a zip, a Shapefile (``.shp``), GeoPackage, GeoJSON, CSV or a
    File Geodatabase folder; zips are unpacked into a fresh directory under
    ``work_dir``, removed again on exit. ``layer`` chooses a layer (or a
    dataset in a zip), ``encoding`` overrides the detected text encoding,
    ``crs`` the file's CRS, ``x_field``/``y_field`` a CSV's coordinate columns.
    Geometries are reprojected to ``target_srid`` (default
    ``settings.storage_srid``). Raises ``IngestError`` (or its subclasses
    ``UnsupportedFormatError``, ``TooLargeError``) with a message for the user.
    """
    return _open(
        Path(path),
        work_dir=Path(work_dir),
        settings=settings,
        opts=_Options(
            layer=layer,
            encoding=encoding,
            crs=crs,
            x_field=x_field,
            y_field=y_field,
            target_srid=target_srid
            if target_srid is not None
            else settings.storage_srid,
        ),
    )


@contextlib.contextmanager
def _open(
    path: Path, *, work_dir: Path, settings: Settings, opts: _Options
) -> Iterator[Source]:
    work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="sdi-read-", dir=work_dir))
    try:
        # fiona routes GDAL's messages to Python logging only inside an Env.
        with fiona.Env():
            dataset, layer = _locate(
                path, work_dir=scratch, settings=settings, layer=opts.layer
            )
            chosen = dataclasses.replace(opts, layer=layer)
            source = _open_dataset(dataset, chosen, scratch)
            source.partition = (dataset, chosen, scratch)
            try:
                yield source
            finally:
                source.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
