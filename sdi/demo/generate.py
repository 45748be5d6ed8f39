"""Generate the demo layers as real files, deterministically.

Every number comes from seeded :class:`random.Random` instances and every date
a format stores is pinned, so the same ``scale`` gives byte-identical files on
every run. Coordinates are HK 1980 Grid (EPSG:2326) easting/northing rounded to
the centimetre. The formats differ on purpose, so the demo exercises several
readers:

- ``landsd_buildings_v1.gpkg``, ``landsd_buildings_v2.gpkg``: GeoPackage polygons;
- ``td_bus_stops_v1.zip``: a zipped Shapefile whose ``.dbf`` is Big5-HKSCS, with a
  ``.cpg`` saying so (DBF field names have at most 10 characters, hence
  ``STOP_NAMEE``/``STOP_NAMEC``, the Transport Department's own style);
- ``td_roads_v1.geojson``: GeoJSON line strings with a ``crs`` member naming
  EPSG:2326 (the pre-RFC 7946 form Hong Kong open data still uses).

Version 2 of the buildings differs from version 1 by construction:
the building at position ``i`` of version 1 is removed when ``i % 50 == 7``,
changed when ``i % 20 == 3`` (more storeys, a new name or a larger footprint, in
turn), and new buildings are appended; :func:`demo_counts` gives the numbers.
"""

from __future__ import annotations

import itertools
import math
import random
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiona
from fiona.crs import CRS

from sdi.demo.hk import (
    BUS_ROUTES,
    DISTRICTS,
    LANDMARKS,
    NAME_SUFFIXES,
    NAME_SYLLABLES,
    TRUNK_ROADS,
    District,
    Street,
)

__all__ = [
    "BUILDING_SCHEMA",
    "BUS_STOP_ENCODING",
    "BUS_STOP_SCHEMA",
    "DEMO_EPSG",
    "ROAD_SCHEMA",
    "DemoCounts",
    "Record",
    "demo_counts",
    "generate_files",
    "iter_buildings",
    "iter_bus_stops",
    "iter_roads",
    "write_layer",
]

#: The CRS of every demo file: Hong Kong 1980 Grid.
DEMO_EPSG = 2326
#: Encoding of the bus stops' ``.dbf`` (an iconv name, as GDAL writes it to ``.cpg``).
BUS_STOP_ENCODING = "BIG5-HKSCS"

SEED = 2326
#: Written wherever a format stores a date, so that output does not change daily.
_FILE_DATE = "2024-01-01"
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)

_BASE_BUILDINGS = 3000
_BASE_BUS_STOPS = 600
_STREET_SEGMENTS = 3  # per street, at scale 1
_TRUNK_SEGMENTS = 6  # per trunk road, at scale 1
_ADDED_SHARE = 0.03  # buildings added in version 2, as a share of version 1
_PITCH = 40.0  # metres between lot centres of a district's grid

#: A feature as fiona writes it: GeoJSON-like geometry and ordered properties.
Record = dict[str, Any]

BUILDING_SCHEMA: dict[str, Any] = {
    "geometry": "Polygon",
    "properties": {
        "BUILDINGID": "str:12",
        "BuildingNameEN": "str:80",
        "BuildingNameTC": "str:40",
        "NUM_STOREY": "int",
        "HEIGHT_M": "float",
        "DISTRICT_EN": "str:40",
        "DISTRICT_TC": "str:20",
        "YEAR_BUILT": "int",
    },
}
BUS_STOP_SCHEMA: dict[str, Any] = {
    "geometry": "Point",
    "properties": {
        "STOP_ID": "int",
        "STOP_NAMEE": "str:120",
        "STOP_NAMEC": "str:80",
        "ROUTES": "str:80",
    },
}
ROAD_SCHEMA: dict[str, Any] = {
    "geometry": "LineString",
    "properties": {
        "ROUTE_ID": "int",
        "ROUTE_NAMEE": "str:80",
        "ROUTE_NAMEC": "str:40",
        "SPEED_LIMIT": "int",
        "LENGTH_M": "float",
    },
}


@dataclass(frozen=True)
class DemoCounts:
    """Feature counts of the demo files at one scale, known by construction."""

    buildings_v1: int
    buildings_added: int
    buildings_changed: int
    buildings_removed: int
    bus_stops: int
    roads: int

    @property
    def buildings_v2(self) -> int:
        """Buildings in version 2."""
        return self.buildings_v1 - self.buildings_removed + self.buildings_added

    @property
    def buildings_diff(self) -> dict[str, int]:
        """Version 2 against version 1, as ingestion reports it."""
        unchanged = self.buildings_v1 - self.buildings_removed - self.buildings_changed
        return {
            "added": self.buildings_added,
            "changed": self.buildings_changed,
            "removed": self.buildings_removed,
            "unchanged": unchanged,
        }

    def features(self) -> dict[str, int]:
        """Feature count of each file :func:`generate_files` writes, by key."""
        return {
            "landsd_buildings_v1": self.buildings_v1,
            "landsd_buildings_v2": self.buildings_v2,
            "td_bus_stops_v1": self.bus_stops,
            "td_roads_v1": self.roads,
        }


def _rng(stream: int) -> random.Random:
    """The seeded generator of one part of the demo (reproducible, not secret)."""
    return random.Random(SEED + stream)  # noqa: S311


def _scaled(base: int, scale: float) -> int:
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale!r}")
    return max(1, round(base * scale))


def _removed(i: int) -> bool:
    return i % 50 == 7


def _changed(i: int) -> bool:
    return i % 20 == 3


def demo_counts(scale: float = 1.0) -> DemoCounts:
    """How many features each demo file holds at ``scale`` (1.0: the demo)."""
    n = _scaled(_BASE_BUILDINGS, scale)
    segments = len(DISTRICTS) * 3 * _scaled(_STREET_SEGMENTS, scale) + len(
        TRUNK_ROADS
    ) * _scaled(_TRUNK_SEGMENTS, scale)
    return DemoCounts(
        buildings_v1=n,
        buildings_added=_scaled(round(_BASE_BUILDINGS * _ADDED_SHARE), scale),
        buildings_changed=sum(1 for i in range(n) if _changed(i)),
        buildings_removed=sum(1 for i in range(n) if _removed(i)),
        bus_stops=_scaled(_BASE_BUS_STOPS, scale),
        roads=segments,
    )


# -- layout -----------------------------------------------------------------


def _share(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda k: (counts[k] - exact[k], k))
    for k in order[: total - sum(counts)]:
        counts[k] += 1
    return counts


@dataclass(frozen=True)
class _Area:
    """A district's share of the buildings and the lots they stand on."""

    district: District
    lots: list[tuple[int, int]]  # grid cells: version 1's, then version 2's additions
    first: int  # how many of ``lots`` version 1 uses
    radius: float  # metres from the centre the lots reach


def _layout(scale: float) -> list[_Area]:
    counts = demo_counts(scale)
    weights = [d.weight for d in DISTRICTS]
    v1 = _share(counts.buildings_v1, weights)
    extra = _share(counts.buildings_added, weights)
    rng = _rng(0)
    areas = []
    for district, n1, n2 in zip(DISTRICTS, v1, extra, strict=True):
        needed = n1 + n2
        radius = _PITCH * (math.sqrt(needed * 1.6 / math.pi) + 1)
        k = int(radius // _PITCH) + 1
        cells = [
            (i, j)
            for i in range(-k, k + 1)
            for j in range(-k, k + 1)
            if (i * i + j * j) * _PITCH**2 <= radius**2
        ]
        areas.append(_Area(district, rng.sample(cells, needed), n1, radius))
    return areas


def _to_grid(district: District, x: float, y: float) -> tuple[float, float]:
    """District-local metres (along its street grid) -> HK 1980 Grid, rounded."""
    a = math.radians(district.grid_angle)
    cos, sin = math.cos(a), math.sin(a)
    return (
        round(district.easting + x * cos - y * sin, 2),
        round(district.northing + x * sin + y * cos, 2),
    )


# -- buildings --------------------------------------------------------------


def _name(rng: random.Random) -> tuple[str | None, str | None]:
    if rng.random() < 0.08:  # many real buildings have no name
        return None, None
    (en1, tc1), (en2, tc2) = rng.sample(NAME_SYLLABLES, 2)
    suffix_en, suffix_tc = rng.choice(NAME_SUFFIXES)
    return f"{en1} {en2} {suffix_en}", f"{tc1}{tc2}{suffix_tc}"


def _footprint(
    district: District, cell: tuple[int, int], rng: random.Random
) -> list[tuple[float, float]]:
    """A rectangle or L shape inside the lot, as a closed counter-clockwise ring."""
    w, h = rng.uniform(10, 30), rng.uniform(10, 30)
    cx = cell[0] * _PITCH + rng.uniform(-2, 2)
    cy = cell[1] * _PITCH + rng.uniform(-2, 2)
    x0, x1, y0, y1 = -w / 2, w / 2, -h / 2, h / 2
    if rng.random() < 0.25:
        cut_w, cut_h = w * rng.uniform(0.3, 0.6), h * rng.uniform(0.3, 0.6)
        local = [
            (x0, y0), (x1, y0), (x1, y1 - cut_h), (x1 - cut_w, y1 - cut_h),
            (x1 - cut_w, y1), (x0, y1),
        ]  # fmt: skip
    else:
        local = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    ring = [_to_grid(district, cx + x, cy + y) for x, y in local]
    return [*ring, ring[0]]


def _building(
    seq: int, area: _Area, cell: tuple[int, int], rng: random.Random
) -> Record:
    district = area.district
    ring = _footprint(district, cell, rng)
    name_en, name_tc = _name(rng)
    storeys = rng.randint(*district.storeys)
    return {
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "BUILDINGID": f"B{seq:07d}",
            "BuildingNameEN": name_en,
            "BuildingNameTC": name_tc,
            "NUM_STOREY": storeys,
            "HEIGHT_M": round(storeys * 3.2 + rng.uniform(0, 4), 1),
            "DISTRICT_EN": district.name_en,
            "DISTRICT_TC": district.name_tc,
            "YEAR_BUILT": rng.randint(1955, 2023),
        },
    }


def _change(i: int, record: Record) -> Record:
    """Version 2's form of changed building ``i``: never equal to version 1's."""
    props = dict(record["properties"])
    geometry = record["geometry"]
    kind = (i // 20) % 3
    if kind == 0:  # storeys added
        props["NUM_STOREY"] += i % 7 + 1
        props["HEIGHT_M"] = round(props["HEIGHT_M"] + (i % 7 + 1) * 3.2, 1)
    elif kind == 1:  # renamed
        props["BuildingNameEN"] = f"{props['BuildingNameEN'] or 'Block'} Phase 2"
        props["BuildingNameTC"] = f"{props['BuildingNameTC'] or '大廈'}二期"
    else:  # footprint extended by 10 %
        ring = geometry["coordinates"][0]
        cx = sum(x for x, _ in ring[:-1]) / (len(ring) - 1)
        cy = sum(y for _, y in ring[:-1]) / (len(ring) - 1)
        ring = [
            (round(cx + 1.1 * (x - cx), 2), round(cy + 1.1 * (y - cy), 2))
            for x, y in ring
        ]
        geometry = {"type": "Polygon", "coordinates": [ring]}
    return {"geometry": geometry, "properties": props}


def iter_buildings(scale: float = 1.0, version: int = 1) -> Iterator[Record]:
    """Building footprints of ``landsd_buildings`` version 1 or 2, in file order."""
    if version not in (1, 2):
        raise ValueError(f"The demo buildings have versions 1 and 2, not {version}.")
    areas = _layout(scale)
    rng = _rng(1)
    i = 0
    for area in areas:
        for cell in area.lots[: area.first]:
            record = _building(i + 1, area, cell, rng)
            if version == 1:
                yield record
            elif _changed(i):
                yield _change(i, record)
            elif not _removed(i):
                yield record
            i += 1
    if version == 2:
        rng = _rng(2)
        seq = i
        for area in areas:
            for cell in area.lots[area.first :]:
                seq += 1
                yield _building(seq, area, cell, rng)


# -- bus stops and roads ------------------------------------------------------


def _streets(
    areas: list[_Area],
) -> list[tuple[District, Street, tuple[float, float, float, float]]]:
    """Each district's three streets as a local line (x0, y0, x1, y1).

    Streets run between rows and columns of lots (half a pitch off the grid),
    so they cross no building.
    """
    streets = []
    for area in areas:
        r = area.radius
        back = -(round(r / 2 / _PITCH) + 0.5) * _PITCH
        lines = (
            (-r, _PITCH / 2, r, _PITCH / 2),
            (-r, back, r, back),
            (_PITCH / 2, -r, _PITCH / 2, r),
        )
        for street, line in zip(area.district.streets, lines, strict=True):
            streets.append((area.district, street, line))
    return streets


def iter_bus_stops(scale: float = 1.0) -> Iterator[Record]:
    """Bus stops of ``td_bus_stops``, along the districts' streets."""
    streets = _streets(_layout(scale))
    rng = _rng(3)
    for k in range(demo_counts(scale).bus_stops):
        district, street, (x0, y0, x1, y1) = streets[k % len(streets)]
        t = rng.uniform(0.05, 0.95)
        side = rng.choice((-2.0, 2.0))  # metres off the centre-line, either side
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        x = x0 + t * dx - side * dy / length
        y = y0 + t * dy + side * dx / length
        landmark_en, landmark_tc = rng.choice(LANDMARKS)
        routes = rng.sample(range(len(BUS_ROUTES)), rng.randint(1, 4))
        yield {
            "geometry": {"type": "Point", "coordinates": _to_grid(district, x, y)},
            "properties": {
                "STOP_ID": 10001 + k,
                "STOP_NAMEE": f"{street.name_en}, {district.name_en} {landmark_en}",
                "STOP_NAMEC": f"{street.name_tc}{district.name_tc}{landmark_tc}",
                "ROUTES": ",".join(BUS_ROUTES[n] for n in sorted(routes)),
            },
        }


def _polyline(points: list[tuple[float, float]]) -> float:
    return sum(
        math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(points)
    )


def _split(
    points: list[tuple[float, float]], pieces: int
) -> list[list[tuple[float, float]]]:
    """A vertex list cut into ``pieces`` consecutive runs sharing end vertices."""
    pieces = min(pieces, len(points) - 1)
    bounds = [round(k * (len(points) - 1) / pieces) for k in range(pieces + 1)]
    return [points[a : b + 1] for a, b in itertools.pairwise(bounds)]


def iter_roads(scale: float = 1.0) -> Iterator[Record]:
    """Road centre-line segments of ``td_roads``: local streets, then trunk roads."""
    areas = _layout(scale)
    route_id = 0

    def record(
        points: list[tuple[float, float]], en: str, tc: str, speed: int
    ) -> Record:
        nonlocal route_id
        route_id += 1
        return {
            "geometry": {"type": "LineString", "coordinates": points},
            "properties": {
                "ROUTE_ID": route_id,
                "ROUTE_NAMEE": en,
                "ROUTE_NAMEC": tc,
                "SPEED_LIMIT": speed,
                "LENGTH_M": round(_polyline(points), 1),
            },
        }

    per_street = _scaled(_STREET_SEGMENTS, scale)
    for district, street, (x0, y0, x1, y1) in _streets(areas):
        steps = max(per_street, math.ceil(math.hypot(x1 - x0, y1 - y0) / 50))
        line = [
            _to_grid(district, x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps)
            for s in range(steps + 1)
        ]
        for piece in _split(line, per_street):
            yield record(piece, street.name_en, street.name_tc, 50)

    centres = {a.district.code: a.district for a in areas}
    per_trunk = _scaled(_TRUNK_SEGMENTS, scale)
    rng = _rng(4)
    for n, road in enumerate(TRUNK_ROADS):
        a, b = centres[road.start], centres[road.end]
        dx, dy = b.easting - a.easting, b.northing - a.northing
        length = math.hypot(dx, dy)
        bulge = 0.06 * length * (1 if n % 2 else -1)
        steps = max(per_trunk, math.ceil(length / 100))
        line = []
        for s in range(steps + 1):
            t = s / steps
            jitter = rng.uniform(-3, 3) if 0 < s < steps else 0.0
            off = bulge * math.sin(math.pi * t) + jitter
            line.append(
                (
                    round(a.easting + t * dx - off * dy / length, 2),
                    round(a.northing + t * dy + off * dx / length, 2),
                )
            )
        for piece in _split(line, per_trunk):
            yield record(piece, road.name_en, road.name_tc, road.speed_limit)


# -- files ------------------------------------------------------------------


def write_layer(
    path: Path,
    schema: dict[str, Any],
    records: Iterable[Record],
    *,
    layer: str | None = None,
    encoding: str | None = None,
) -> Path:
    """Write ``records`` in EPSG:2326 to ``path``; the suffix picks the format.

    ``.gpkg`` (GeoPackage), ``.geojson`` (GeoJSON with a ``crs`` member),
    ``.shp`` (Shapefile) or ``.zip`` (a Shapefile zipped with fixed dates).
    ``encoding`` applies to Shapefiles and is written to the ``.cpg``.
    Any file already at ``path`` is replaced.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            shp = Path(tmp) / f"{layer or path.stem}.shp"
            write_layer(shp, schema, records, encoding=encoding)
            _zip(sorted(Path(tmp).iterdir()), path)
        return path
    drivers = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".shp": "ESRI Shapefile"}
    if suffix not in drivers:
        raise ValueError(f"No demo format for {path.name}: use one of {drivers}.")
    driver = drivers[suffix]
    options: dict[str, Any] = {}
    if driver == "ESRI Shapefile":
        options["DBF_DATE_LAST_UPDATE"] = _FILE_DATE
        if encoding:
            options["encoding"] = encoding
    if driver == "GeoJSON":
        options["COORDINATE_PRECISION"] = 2  # centimetres, as generated
    if layer and driver == "GPKG":
        options["layer"] = layer
    stale = path.parent.glob(f"{path.stem}.*") if suffix == ".shp" else [path]
    for old in stale:
        old.unlink(missing_ok=True)
    with (
        fiona.Env(OGR_CURRENT_DATE=f"{_FILE_DATE}T00:00:00.000Z"),
        fiona.open(
            path, "w", driver=driver, schema=schema, crs=CRS.from_epsg(DEMO_EPSG),
            **options,
        ) as sink,
    ):  # fmt: skip
        batch: list[fiona.Feature] = []
        for record in records:
            batch.append(fiona.Feature.from_dict(record))
            if len(batch) == 10_000:
                sink.writerecords(batch)
                batch = []
        if batch:
            sink.writerecords(batch)
    return path


def _zip(members: list[Path], path: Path) -> None:
    """Zip ``members`` flat into ``path`` with pinned dates and permissions."""
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with member.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    tmp.replace(path)


def generate_files(out_dir: Path, *, scale: float = 1.0) -> dict[str, Path]:
    """Write every demo file into ``out_dir``; returns them by ``<layer>_v<n>`` key.

    Same ``scale``, same bytes: the files can be checksummed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "landsd_buildings_v1": write_layer(
            out_dir / "landsd_buildings_v1.gpkg", BUILDING_SCHEMA,
            iter_buildings(scale, 1), layer="buildings",
        ),
        "landsd_buildings_v2": write_layer(
            out_dir / "landsd_buildings_v2.gpkg", BUILDING_SCHEMA,
            iter_buildings(scale, 2), layer="buildings",
        ),
        "td_bus_stops_v1": write_layer(
            out_dir / "td_bus_stops_v1.zip", BUS_STOP_SCHEMA, iter_bus_stops(scale),
            layer="BUS_STOP", encoding=BUS_STOP_ENCODING,
        ),
        "td_roads_v1": write_layer(
            out_dir / "td_roads_v1.geojson", ROAD_SCHEMA, iter_roads(scale),
        ),
    }  # fmt: skip
    return files
