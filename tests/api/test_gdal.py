"""GDAL's OGC API - Features client (OAPIF driver) against the running API."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import Server
from tests.api.layerdata import Conn, buildings_layer

SLUG = "landsd_buildings"


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GDAL_HTTP_TIMEOUT="30", CPL_DEBUG="OFF")
    env.pop("http_proxy", None)
    env.pop("HTTP_PROXY", None)
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, check=False, env=env
    )


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


def test_ogrinfo_lists_the_layer(layer: Conn, server: Server) -> None:
    listing = gdal("ogrinfo", "-ro", f"OAPIF:{server.url}")
    assert listing.returncode == 0, listing.stderr
    assert SLUG in listing.stdout
    summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server.url}", SLUG)
    assert summary.returncode == 0, summary.stderr
    assert "Feature Count: 25" in summary.stdout
    assert "NAME_TC: String" in summary.stdout
    assert "FLOORS: Integer" in summary.stdout


def test_ogr2ogr_exports_every_feature_intact(
    layer: Conn, server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "out.gpkg"
    # a small page size makes GDAL follow several next links
    export = gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.url}", SLUG,
        "-oo", "PAGE_SIZE=7",
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    back = gdal("ogr2ogr", "-f", "GeoJSON", "/vsistdout/", str(out), SLUG)
    assert back.returncode == 0, back.stderr
    features = json.loads(back.stdout)["features"]
    assert len(features) == 25
    by_id = {f["properties"]["BLDG_ID"]: f["properties"] for f in features}
    assert len(by_id) == 25
    assert by_id["B0007"]["NAME_TC"] == "大廈7號"
    assert by_id["B0007"]["NAME_EN"] == "Building 7"
    assert by_id["B0007"]["FLOORS"] == 8
