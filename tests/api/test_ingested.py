"""Real files through the loader, publication and the API: what an agency does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from sdi import registry
from sdi.ingest import ingest_file
from tests.api.conftest import Server
from tests.api.layerdata import Conn, ensure_agency
from tests.ingest.files import PLACES, make_big5_shapefile_zip

SLUG = "lcsd_places"
#: Names with characters outside the BMP and from HKSCS (𨋢 "lift", 䢂).
RARE = ["維多利亞公園", "九龍公園", "𨋢站花園", "䢂涌公園"]


def rare_names_geojson(directory: Path) -> Path:
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {"ID": i + 1, "NAME_TC": name},
            "geometry": {"type": "Point", "coordinates": [836000 + i * 100, 817000]},
        }
        for i, name in enumerate(RARE)
    ]
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2326"}},
        "features": features,
    }
    path = directory / "parks.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def ogr2ogr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ogr2ogr", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("make", "encoding", "expected"),
    [
        (make_big5_shapefile_zip, "big5hkscs", [p[1] for p in PLACES]),
        (rare_names_geojson, None, RARE),
    ],
    ids=["big5hkscs-shapefile", "non-bmp-geojson"],
)
def test_ingested_file_is_served_intact(
    db: Conn,
    server: Server,
    tmp_path: Path,
    make: Any,
    encoding: str | None,
    expected: list[str],
) -> None:
    registry.create_layer(
        db,
        ensure_agency(db, "lcsd"),
        registry.LayerInput(
            slug=SLUG,
            title_en="Places",
            title_zh="地方",
            licence_id=registry.get_licence(db, "hk-datagovhk").id,
            key_column="ID",
        ),
    )
    source = make(tmp_path)
    version = ingest_file(db, server.settings, source, layer=SLUG, encoding=encoding)
    registry.publish(db, SLUG, version.number)

    url = f"{server.url}/collections/{SLUG}/items"
    body = requests.get(url, params={"limit": 100}, timeout=30).json()
    assert body["numberMatched"] == len(expected)
    served = sorted(f["properties"]["NAME_TC"] for f in body["features"])
    assert served == sorted(expected)
    for feature in body["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert 113.8 < lon < 114.5 and 22.1 < lat < 22.6

    out = tmp_path / "export.gpkg"
    export = ogr2ogr("-f", "GPKG", str(out), f"OAPIF:{server.url}", SLUG)
    assert export.returncode == 0, export.stderr
    back = ogr2ogr("-f", "GeoJSON", "/vsistdout/", str(out), SLUG)
    assert back.returncode == 0, back.stderr
    exported = sorted(
        f["properties"]["NAME_TC"] for f in json.loads(back.stdout)["features"]
    )
    assert exported == sorted(expected)
