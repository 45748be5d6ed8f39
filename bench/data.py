"""Benchmark data sets: generated once into ``bench/data`` and reused.

Buildings come from the demo generator (:func:`sdi.demo.iter_buildings`) at a
larger scale, with Shapefile-safe field names (at most 10 characters) so the
Shapefile and the GeoPackage hold exactly the same table. A manifest records
what was generated; files are regenerated when it does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from sdi.demo import Record, demo_counts, iter_buildings, write_layer

#: Buildings at ``--scale 1``.
BASE_FEATURES = 300_000
_DEMO_BASE = demo_counts(1.0).buildings_v1  # buildings of the demo at scale 1
_GENERATOR = "buildings/1"  # bump when the generated content changes
_FIELDS = {
    "BUILDINGID": ("BUILDINGID", "str:12"),
    "BuildingNameEN": ("NAME_EN", "str:80"),
    "BuildingNameTC": ("NAME_TC", "str:40"),
    "NUM_STOREY": ("NUM_STOREY", "int"),
    "HEIGHT_M": ("HEIGHT_M", "float"),
    "DISTRICT_EN": ("DIST_EN", "str:40"),
    "DISTRICT_TC": ("DIST_TC", "str:20"),
    "YEAR_BUILT": ("YEAR_BUILT", "int"),
}
SCHEMA: dict[str, Any] = {
    "geometry": "Polygon",
    "properties": dict(_FIELDS.values()),
}
SUFFIX = {"shp": ".zip", "gpkg": ".gpkg"}
DRIVER = {"shp": "ESRI Shapefile", "gpkg": "GPKG"}
_KIND = {"shp": "zipped Shapefile", "gpkg": "GeoPackage"}


@dataclass(frozen=True)
class Dataset:
    """One generated file."""

    name: str  # e.g. "buildings-300k.zip"
    format: str  # "shp" or "gpkg"
    path: Path
    features: int
    bytes: int
    sha256: str

    @property
    def label(self) -> str:
        """How tables name it."""
        return f"{self.name} ({_KIND[self.format]})"


def _renamed(records: Iterator[Record]) -> Iterator[Record]:
    for record in records:
        props = record["properties"]
        yield {
            "geometry": record["geometry"],
            "properties": {new: props[old] for old, (new, _) in _FIELDS.items()},
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size_name(features: int) -> str:
    return f"{features // 1000}k" if features >= 1000 else str(features)


def buildings(
    data_dir: Path,
    scale: float,
    formats: tuple[str, ...],
    *,
    regenerate: bool = False,
    console: Console | None = None,
) -> list[Dataset]:
    """The building data sets at ``scale`` (1.0: 300,000 polygons), one per format."""
    demo_scale = BASE_FEATURES * scale / _DEMO_BASE
    features = demo_counts(demo_scale).buildings_v1
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = data_dir / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    out = []
    for fmt in formats:
        name = f"buildings-{_size_name(features)}{SUFFIX[fmt]}"
        path = data_dir / name
        entry = manifest.get(name, {})
        fresh = (
            not regenerate
            and path.exists()
            and entry.get("generator") == _GENERATOR
            and entry.get("features") == features
            and entry.get("bytes") == path.stat().st_size
        )
        if not fresh:
            if console:
                console.log(f"Generating {name}: {features:,} building polygons")
            write_layer(
                path,
                SCHEMA,
                _renamed(iter_buildings(demo_scale, 1)),
                layer="buildings",
                encoding="UTF-8" if fmt == "shp" else None,
            )
            entry = {
                "generator": _GENERATOR,
                "features": features,
                "bytes": path.stat().st_size,
                "sha256": _sha256(path),
            }
            manifest[name] = entry
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        out.append(Dataset(name, fmt, path, features, entry["bytes"], entry["sha256"]))
    return out
