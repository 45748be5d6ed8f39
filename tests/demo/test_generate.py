"""The demo generator: deterministic files, in Hong Kong, bilingual, diff known."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import fiona
import pytest
from shapely.geometry import shape

from sdi.demo import demo_counts, generate_files, iter_buildings
from sdi.demo.generate import BUS_STOP_ENCODING

KEYS = {
    "landsd_buildings_v1": "BUILDINGID",
    "landsd_buildings_v2": "BUILDINGID",
    "td_bus_stops_v1": "STOP_ID",
    "td_roads_v1": "ROUTE_ID",
}


def _open(path: Path) -> Any:
    return fiona.open(f"zip://{path}" if path.suffix == ".zip" else path)


def _sha256(files: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_files(tmp_path_factory.mktemp("demo"))


def test_one_file_per_layer_version(files: dict[str, Path]) -> None:
    assert set(files) == set(KEYS)
    assert files["landsd_buildings_v1"].suffix == ".gpkg"
    assert files["td_bus_stops_v1"].suffix == ".zip"
    assert files["td_roads_v1"].suffix == ".geojson"


def test_byte_identical_across_runs(files: dict[str, Path], tmp_path: Path) -> None:
    again = generate_files(tmp_path / "again")
    assert _sha256(again) == _sha256(files)
    # Another interpreter with another hash seed writes the same bytes too.
    code = (
        "import hashlib, sys; from pathlib import Path; "
        "from sdi.demo import generate_files; "
        "fs = generate_files(Path(sys.argv[1])); "
        "print(*(f'{k} {hashlib.sha256(p.read_bytes()).hexdigest()}' "
        "for k, p in sorted(fs.items())), sep='\\n')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "other")],
        check=True, capture_output=True, text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert dict(line.split() for line in out.splitlines()) == _sha256(files)


def test_counts_are_known_by_construction(files: dict[str, Path]) -> None:
    counts = demo_counts()
    assert counts.buildings_v1 == 3000
    for key, expected in counts.features().items():
        with _open(files[key]) as src:
            assert len(src) == expected, key


def test_hong_kong_grid_and_crs(files: dict[str, Path]) -> None:
    for key, path in files.items():
        with _open(path) as src:
            assert src.crs.to_epsg() == 2326, key
            minx, miny, maxx, maxy = src.bounds
            assert 800_000 < minx < maxx < 860_000, key
            assert 800_000 < miny < maxy < 850_000, key


def test_keys_unique_and_geometries_valid(files: dict[str, Path]) -> None:
    for key, path in files.items():
        with _open(path) as src:
            features = list(src)
        ids = [f.properties[KEYS[key]] for f in features]
        assert all(ids), key
        assert len(set(ids)) == len(ids), key
        assert all(shape(f.geometry).is_valid for f in features), key


def test_bilingual_attributes(files: dict[str, Path]) -> None:
    with _open(files["landsd_buildings_v1"]) as src:
        rows = [f.properties for f in src]
    named = [r for r in rows if r["BuildingNameTC"]]
    assert 0.8 * len(rows) < len(named) < len(rows)  # some buildings have no name
    assert all(r["BuildingNameTC"] != r["BuildingNameEN"] for r in named)
    assert {"旺角", "沙田", "中環", "深水埗"} <= {r["DISTRICT_TC"] for r in rows}
    with _open(files["td_roads_v1"]) as src:
        assert "彌敦道" in {f.properties["ROUTE_NAMEC"] for f in src}


def test_bus_stops_dbf_is_big5_hkscs(files: dict[str, Path]) -> None:
    with zipfile.ZipFile(files["td_bus_stops_v1"]) as zf:
        assert sorted(zf.namelist()) == [
            f"BUS_STOP.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx")
        ]
        assert zf.read("BUS_STOP.cpg").decode().strip() == BUS_STOP_ENCODING
        dbf = zf.read("BUS_STOP.dbf")
    # 埗 and 鰂 are HKSCS characters: plain Big5 / cp950 cannot hold them.
    assert "深水埗".encode("big5hkscs") in dbf
    assert "鰂魚涌".encode("big5hkscs") in dbf
    with pytest.raises(UnicodeEncodeError):
        "深水埗".encode("cp950")
    assert "深水埗".encode() not in dbf
    with _open(files["td_bus_stops_v1"]) as src:  # GDAL honours the .cpg
        names = [f.properties["STOP_NAMEC"] for f in src]
    assert any("深水埗" in n for n in names)


def _by_id(path: Path) -> dict[str, tuple[Any, ...]]:
    with _open(path) as src:
        return {
            f.properties["BUILDINGID"]: (shape(f.geometry).wkb, dict(f.properties))
            for f in src
        }


def test_buildings_version_2_diff(files: dict[str, Path]) -> None:
    v1 = _by_id(files["landsd_buildings_v1"])
    v2 = _by_id(files["landsd_buildings_v2"])
    common = v1.keys() & v2.keys()
    diff = {
        "added": len(v2.keys() - v1.keys()),
        "changed": sum(1 for k in common if v1[k] != v2[k]),
        "removed": len(v1.keys() - v2.keys()),
        "unchanged": sum(1 for k in common if v1[k] == v2[k]),
    }
    assert diff == demo_counts().buildings_diff
    assert diff == {"added": 90, "changed": 150, "removed": 60, "unchanged": 2790}


def test_scale(tmp_path: Path) -> None:
    small = demo_counts(0.1)
    assert small.buildings_v1 == 300
    assert sum(1 for _ in iter_buildings(0.1, 2)) == small.buildings_v2
    with pytest.raises(ValueError, match="scale"):
        demo_counts(0)
    with pytest.raises(ValueError, match="versions 1 and 2"):
        next(iter_buildings(1.0, 3))
