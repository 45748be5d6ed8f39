"""The serving suite's data: building footprints and street furniture in Hong Kong.

Two GeoPackages in EPSG:4326, generated once (seeded numpy) and reused while
the manifest in the data directory matches:

- ``serving-buildings-<n>.gpkg``, layer ``buildings``: 300,000 polygons at
  ``--scale 1``, rotated rectangles and L shapes 8-30 m across, clustered on
  the built-up areas (dense on Central, where the z14 tile holding
  114.158,22.282 carries about 30,000 of them, and Kowloon), with ``name_en``,
  ``name_tc`` (Chinese), ``floors`` (integer), ``height`` (float), ``use``
  (category) and ``built`` (date);
- ``serving-points-<n>.gpkg``, layer ``points``: 1,000,000 street lamps and
  trees at ``--scale 1`` with ``ref``, ``kind``, ``name_en``, ``name_tc``,
  ``height`` and ``installed`` (date).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiona
import numpy as np
from fiona.crs import CRS
from rich.console import Console

from sdi.demo.hk import NAME_SUFFIXES, NAME_SYLLABLES

BUILDINGS = 300_000
POINTS = 1_000_000
_GENERATOR = "serving/1"  # bump when the generated content changes
_M_LON = 1 / (111_320 * math.cos(math.radians(22.3)))  # degrees per metre
_M_LAT = 1 / 110_574

#: z14 tile over Central (holds 114.158,22.282): the vector tile request.
CENTRAL_TILE = (14, 13387, 7151)  # z, x, y
#: (name, lon, lat, standard deviation in m, share of the clustered buildings,
#: street grid angle in degrees)
_CLUSTERS: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("Central", 114.1589, 22.2789, 520, 0.110, 15),
    ("Wan Chai", 114.1800, 22.2780, 650, 0.060, 10),
    ("North Point", 114.2020, 22.2880, 700, 0.040, 20),
    ("Tsim Sha Tsui", 114.1720, 22.3000, 550, 0.060, 0),
    ("Mong Kok", 114.1700, 22.3180, 600, 0.075, 0),
    ("Sham Shui Po", 114.1600, 22.3320, 700, 0.060, 40),
    ("Kowloon City", 114.1900, 22.3250, 700, 0.045, 30),
    ("Kwun Tong", 114.2250, 22.3130, 800, 0.055, 35),
    ("Wong Tai Sin", 114.1950, 22.3420, 700, 0.035, 5),
    ("Tsuen Wan", 114.1150, 22.3700, 1000, 0.060, 45),
    ("Sha Tin", 114.1900, 22.3820, 1200, 0.055, 25),
    ("Tuen Mun", 113.9750, 22.3920, 1200, 0.045, 10),
    ("Yuen Long", 114.0200, 22.4500, 1500, 0.055, 0),
    ("Tai Po", 114.1650, 22.4500, 1200, 0.035, 30),
    ("Sheung Shui", 114.1300, 22.5000, 1200, 0.035, 15),
    ("Tseung Kwan O", 114.2600, 22.3100, 900, 0.035, 20),
    ("Tung Chung", 113.9400, 22.2880, 900, 0.015, 35),
    ("Aberdeen", 114.1550, 22.2480, 1000, 0.025, 10),
)
_RURAL_SHARE = 0.10  # of all buildings, spread over the territory
_TERRITORY = (113.84, 22.16, 114.40, 22.56)  # lon/lat box
_USES = (
    ("residential", 0.55), ("commercial", 0.15), ("composite", 0.08),
    ("industrial", 0.08), ("government", 0.05), ("education", 0.04),
    ("other", 0.05),
)  # fmt: skip
_SPECIES = (
    ("Chinese Banyan", "細葉榕"), ("Flame Tree", "鳳凰木"), ("Camphor Tree", "樟樹"),
    ("Cotton Tree", "木棉"), ("Bauhinia", "洋紫荊"), ("Candlenut", "石栗"),
    ("Queen's Crape Myrtle", "大花紫薇"), ("Chinese Hackberry", "朴樹"),
)  # fmt: skip
_EPOCH = dt.date(1950, 1, 1)

BUILDING_SCHEMA: dict[str, Any] = {
    "geometry": "Polygon",
    "properties": {
        "name_en": "str:80", "name_tc": "str:40", "floors": "int",
        "height": "float", "use": "str:20", "built": "date",
    },
}  # fmt: skip
POINT_SCHEMA: dict[str, Any] = {
    "geometry": "Point",
    "properties": {
        "ref": "str:12", "kind": "str:12", "name_en": "str:40", "name_tc": "str:20",
        "height": "float", "installed": "date",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Layer:
    """One generated GeoPackage layer."""

    name: str  # layer name in the file, also the table / collection name
    path: Path
    features: int

    @property
    def label(self) -> str:
        """How tables name it."""
        return f"{self.name} ({self.features:,}, {self.path.name})"


def _centres(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Lon, lat and grid angle (radians) of ``n`` feature centres."""
    rural = round(n * _RURAL_SHARE)
    shares = np.array([c[4] for c in _CLUSTERS])
    counts = rng.multinomial(n - rural, shares / shares.sum())
    lon, lat, angle = [], [], []
    for (_, clon, clat, sd, _, deg), k in zip(_CLUSTERS, counts, strict=True):
        lon.append(clon + rng.normal(0, sd, k) * _M_LON)
        lat.append(clat + rng.normal(0, sd, k) * _M_LAT)
        angle.append(np.full(k, math.radians(deg)))
    w, s, e, north = _TERRITORY
    lon.append(rng.uniform(w, e, rural))
    lat.append(rng.uniform(s, north, rural))
    angle.append(rng.uniform(0, math.pi / 2, rural))
    order = rng.permutation(n)  # file order is not spatial order, as in real data
    return tuple(np.concatenate(a)[order] for a in (lon, lat, angle))


def _names(rng: np.random.Generator, n: int) -> tuple[list[Any], list[Any]]:
    syl = len(NAME_SYLLABLES)
    a, b = rng.integers(0, syl, n), rng.integers(0, syl, n)
    suffix = rng.integers(0, len(NAME_SUFFIXES), n)
    block = rng.integers(1, 12, n)
    none = rng.random(n) < 0.08  # many real buildings have no name
    en: list[Any] = []
    tc: list[Any] = []
    for i in range(n):
        if none[i]:
            en.append(None)
            tc.append(None)
            continue
        (en1, tc1), (en2, tc2) = NAME_SYLLABLES[a[i]], NAME_SYLLABLES[b[i]]
        s_en, s_tc = NAME_SUFFIXES[suffix[i]]
        en.append(f"{en1} {en2} {s_en} Block {block[i]}")
        tc.append(f"{tc1}{tc2}{s_tc}第{block[i]}座")
    return en, tc


def _dates(rng: np.random.Generator, n: int, first: int, last: int) -> list[str]:
    start = (dt.date(first, 1, 1) - _EPOCH).days
    end = (dt.date(last, 12, 31) - _EPOCH).days
    days = rng.integers(start, end + 1, n)
    return [(_EPOCH + dt.timedelta(days=int(d))).isoformat() for d in days]


def iter_buildings(n: int) -> Iterator[dict[str, Any]]:
    """``n`` building records (fiona's GeoJSON-like form), deterministically."""
    rng = np.random.default_rng(2326)
    lon, lat, angle = _centres(rng, n)
    angle = angle + rng.normal(0, 0.05, n)
    w = rng.uniform(8, 30, n)
    h = rng.uniform(8, 30, n)
    l_shape = rng.random(n) < 0.25
    cut_w = w * rng.uniform(0.3, 0.6, n)
    cut_h = h * rng.uniform(0.3, 0.6, n)
    dense = np.abs(lat - 22.30) < 0.06  # urban Kowloon and the north shore
    floors = np.where(dense, rng.integers(3, 61, n), rng.integers(1, 41, n))
    height = np.round(floors * 3.1 + rng.uniform(0, 4, n), 1)
    uses = rng.choice(len(_USES), n, p=[p for _, p in _USES])
    name_en, name_tc = _names(rng, n)
    built = _dates(rng, n, 1950, 2024)
    cos, sin = np.cos(angle), np.sin(angle)
    for i in range(n):
        x0, x1, y0, y1 = -w[i] / 2, w[i] / 2, -h[i] / 2, h[i] / 2
        if l_shape[i]:
            xc, yc = x1 - cut_w[i], y1 - cut_h[i]
            local = ((x0, y0), (x1, y0), (x1, yc), (xc, yc), (xc, y1), (x0, y1))
        else:
            local = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        ring = [
            (
                round(float(lon[i] + (x * cos[i] - y * sin[i]) * _M_LON), 7),
                round(float(lat[i] + (x * sin[i] + y * cos[i]) * _M_LAT), 7),
            )
            for x, y in local
        ]
        ring.append(ring[0])
        yield {
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {
                "name_en": name_en[i],
                "name_tc": name_tc[i],
                "floors": int(floors[i]),
                "height": float(height[i]),
                "use": _USES[uses[i]][0],
                "built": built[i],
            },
        }


def iter_points(n: int) -> Iterator[dict[str, Any]]:
    """``n`` street lamps and trees, deterministically."""
    rng = np.random.default_rng(1980)
    lon, lat, _ = _centres(rng, n)
    # Along streets: a few metres off the building centres' pattern.
    lon = lon + rng.normal(0, 15, n) * _M_LON
    lat = lat + rng.normal(0, 15, n) * _M_LAT
    tree = rng.random(n) < 0.4
    species = rng.integers(0, len(_SPECIES), n)
    height = np.round(np.where(tree, rng.uniform(3, 25, n), rng.uniform(6, 12, n)), 1)
    installed = _dates(rng, n, 1970, 2024)
    for i in range(n):
        if tree[i]:
            kind, (en, tc), ref = "tree", _SPECIES[species[i]], f"TR{i + 1:08d}"
        else:
            kind, en, tc, ref = "lamp", "Street lamp", "街燈", f"LP{i + 1:08d}"
        yield {
            "geometry": {
                "type": "Point",
                "coordinates": (round(float(lon[i]), 7), round(float(lat[i]), 7)),
            },
            "properties": {
                "ref": ref,
                "kind": kind,
                "name_en": en,
                "name_tc": tc,
                "height": float(height[i]),
                "installed": installed[i],
            },
        }


def _size_name(features: int) -> str:
    return f"{features // 1000}k" if features >= 1000 else str(features)


def _write(path: Path, layer: str, schema: dict[str, Any], records: Any) -> None:
    partial = path.with_suffix(".tmp.gpkg")
    partial.unlink(missing_ok=True)
    with fiona.open(
        partial, "w", driver="GPKG", schema=schema, crs=CRS.from_epsg(4326),
        layer=layer,
    ) as dst:  # fmt: skip
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) == 20_000:
                dst.writerecords(batch)
                batch = []
        if batch:
            dst.writerecords(batch)
    partial.replace(path)


def layers(
    data_dir: Path, scale: float, *, regenerate: bool = False, console: Console
) -> tuple[Layer, Layer]:
    """The buildings and points GeoPackages at ``scale`` (generated when stale)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = data_dir / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    out = []
    for layer, base, schema, generate in (
        ("buildings", BUILDINGS, BUILDING_SCHEMA, iter_buildings),
        ("points", POINTS, POINT_SCHEMA, iter_points),
    ):
        n = max(1000, round(base * scale))
        path = data_dir / f"serving-{layer}-{_size_name(n)}.gpkg"
        entry = manifest.get(path.name, {})
        fresh = (
            not regenerate
            and path.exists()
            and entry.get("generator") == _GENERATOR
            and entry.get("features") == n
            and entry.get("bytes") == path.stat().st_size
        )
        if not fresh:
            console.log(f"Generating {path.name}: {n:,} {layer}")
            _write(path, layer, schema, generate(n))
            # Re-read: another suite may have written the manifest meanwhile.
            if manifest_path.exists():
                manifest = json.loads(manifest_path.read_text())
            manifest[path.name] = {
                "generator": _GENERATOR,
                "features": n,
                "bytes": path.stat().st_size,
            }
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        out.append(Layer(layer, path, n))
    return out[0], out[1]
