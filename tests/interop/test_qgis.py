"""QGIS's OGC API - Features provider (``OAPIF``) reads every demo layer.

QGIS runs as Debian's ``python3-qgis`` under ``/usr/bin/python3`` (not the
virtual environment), headless, in ``qgis_read.py``, which prints what the
provider gives as JSON. Compared with the demo's source records and SQL.

QGIS 3.22 (Debian 12) has no OGC API - Features Part 2 support: its OAPIF
layers are always CRS84 and ``srsname`` is ignored (3.28 added ``crs``
requests). A QGIS 3.22 user who works in EPSG:2326 gets the features
reprojected by QGIS, which is what the EPSG:2326 tests do when the layer is
not in that CRS; with a QGIS that negotiates the CRS the server's EPSG:2326
output is read as is. Either way the test checks what the user sees.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import LineString, Point, Polygon, box

from tests.interop.conftest import (
    CHINESE,
    FILTERS,
    LAYERS,
    Demo,
    Layer,
    in_box,
    max_distance,
    subset_bbox,
    to_hk80,
)

SLUGS = sorted(LAYERS)
QGIS_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("qgis_read.py")
TOLERANCE_M = 0.01


def qgis(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``qgis_read.py`` with ``spec``; its JSON answer."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        env.pop(name, None)
    env.pop("PYTHONPATH", None)  # Debian's python3, not the venv's packages
    env.pop("VIRTUAL_ENV", None)
    if not Path(QGIS_PYTHON).exists():
        pytest.fail(f"{QGIS_PYTHON} is missing: run scripts/install-system-deps")
    run = subprocess.run(
        [QGIS_PYTHON, str(SCRIPT), json.dumps(spec)],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    if "No module named 'qgis'" in run.stderr:
        pytest.fail("python3-qgis is not installed: run scripts/install-system-deps")
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    assert "OAPIF" in out["providers"], "QGIS has no OAPIF provider (qgis-providers)"
    assert out["valid"], f"QGIS could not open {spec['uri']}: {out['messages']}"
    return out


def uri(demo: Demo, slug: str, **extra: str) -> str:
    """An OAPIF data source URI: the landing page and the collection."""
    keys = {"url": demo.url, "typename": slug, "restrictToRequestBBOX": "0"} | extra
    return " ".join(f"{k}='{v}'" for k, v in keys.items())


def by_key(layer: Layer, features: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in features:
        k = str(f["attributes"][layer.key])
        assert k not in out, f"{layer.slug}: feature {k} read twice"
        out[k] = f
    return out


def assert_same_attributes(layer: Layer, key: str, got: dict[str, Any]) -> None:
    for name, value in layer.properties[key].items():
        assert name in got, f"{layer.slug}: attribute {name} missing"
        if isinstance(value, float):
            assert isinstance(got[name], int | float), (
                f"{layer.slug} {key}: {name} is {got[name]!r}, the file has {value!r}"
            )
            assert math.isclose(got[name], value, abs_tol=1e-9), (
                f"{layer.slug} {key}: {name} is {got[name]!r}, the file has {value!r}"
            )
        else:
            assert got[name] == value, (
                f"{layer.slug} {key}: {name} is {got[name]!r}, the file has {value!r}"
            )


def as_shape(layer: Layer, coords: list[tuple[float, float]]) -> Any:
    kind = {"Point": Point, "LineString": LineString, "Polygon": Polygon}
    return kind[layer.geometry_type](coords[0] if len(coords) == 1 else coords)


@pytest.mark.parametrize("slug", SLUGS)
def test_qgis_reads_every_feature_in_crs84(demo: Demo, slug: str) -> None:
    layer = demo.layers[slug]
    out = qgis({"uri": uri(demo, slug)})
    assert out["crs"] in ("EPSG:4326", "OGC:CRS84")  # QGIS 3.22 names CRS84 so
    assert out["feature_count"] == demo.count(slug)
    qgis_types = {"str": "String", "int": "Integer", "float": "Real"}
    assert {
        name: kind.replace("Integer64", "Integer")
        for name, kind in out["fields"].items()
    } == {name: qgis_types[kind] for name, kind in layer.fields.items()}
    got = by_key(layer, out["features"])
    assert set(got) == set(layer.properties) == demo.keys(slug)
    for key, feature in got.items():
        assert_same_attributes(layer, key, feature["attributes"])
        lonlat = [(x, y) for x, y in feature["vertices"]]
        assert 113.8 < lonlat[0][0] < 114.5 and 22.1 < lonlat[0][1] < 22.6, key
        assert max_distance(to_hk80(lonlat), layer.coords[key]) < TOLERANCE_M, key
    assert any(f["attributes"][CHINESE[slug]] for f in out["features"])


@pytest.mark.parametrize("slug", SLUGS)
def test_qgis_reads_every_feature_in_hk80(demo: Demo, slug: str) -> None:
    layer = demo.layers[slug]
    out = qgis(
        {
            "uri": uri(demo, slug, srsname="EPSG:2326"),
            "destination_crs": "EPSG:2326",
        }
    )
    got = by_key(layer, out["features"])
    assert set(got) == set(layer.properties)
    for key, feature in got.items():
        assert_same_attributes(layer, key, feature["attributes"])
        coords = [(x, y) for x, y in feature["vertices"]]
        # easting, northing: the same as the file the demo was ingested from
        assert max_distance(coords, layer.coords[key]) < TOLERANCE_M, key


@pytest.mark.parametrize("hk80", [False, True], ids=["crs84", "hk80"])
@pytest.mark.parametrize("slug", SLUGS)
def test_qgis_filtered_subset(demo: Demo, slug: str, hk80: bool) -> None:
    """A subset string and a map extent, as a QGIS user filters a layer."""
    layer = demo.layers[slug]
    subset = FILTERS[slug]
    bbox = subset_bbox(layer, subset, hk80=hk80)
    spec: dict[str, Any] = {"uri": uri(demo, slug), "subset": subset.qgis}
    if hk80:
        spec |= {
            "uri": uri(demo, slug, srsname="EPSG:2326"),
            "destination_crs": "EPSG:2326",
        }
    out = qgis(spec | {"extent": list(bbox)})
    assert out["subset_accepted"]
    # (QGIS 3.22's featureCount() of a subset it evaluates itself is an
    # estimate, 1000 for 1732 buildings: what it reads is checked instead)
    expected = subset.expected(demo, slug, bbox, 2326 if hk80 else 4326)
    assert 0 < len(expected) < demo.count(slug, subset.sql, *subset.params)
    assert len(expected) < demo.count(slug, in_box(2326 if hk80 else 4326), *bbox)
    got = by_key(layer, out["features"])
    assert set(got) == expected
    window = box(*bbox)
    for key, feature in got.items():
        assert subset.test(feature["attributes"]), key
        assert_same_attributes(layer, key, feature["attributes"])
        coords = [(x, y) for x, y in feature["vertices"]]
        assert as_shape(layer, coords).intersects(window), key
        if hk80:
            assert max_distance(coords, layer.coords[key]) < TOLERANCE_M, key
        else:
            assert max_distance(to_hk80(coords), layer.coords[key]) < TOLERANCE_M
