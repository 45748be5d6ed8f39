"""Downloads of versions (read back with fiona), previews and review summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fiona
import psycopg
import pytest

from sdi import registry
from sdi.errors import BadInputError
from sdi.export import (
    export_version,
    layer_history,
    preview_features,
    schema_change,
    uploaders,
    version_summary,
)
from sdi.ingest import ingest_file
from sdi.registry.models import Layer
from sdi.settings import Settings
from tests.ingest import files
from tests.ingest.test_load import write_geojson

Conn = psycopg.Connection[Any]


def make_layer(conn: Conn, slug: str = "landsd_places", **extra: Any) -> Layer:
    agency = registry.create_agency(conn, "landsd", "Lands Department", "地政總署")
    licence = registry.get_licence(conn, "hk-csdi")
    return registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug=slug, title_en="Places", licence_id=licence.id, **extra
        ),
    )


def load(conn: Conn, settings: Settings, layer: Layer, path: Path) -> int:
    return ingest_file(
        conn, settings, path, layer=layer.slug, actor="tester@example.org"
    ).number


def read(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    with fiona.open(path) as src:
        meta = (src.driver, src.crs.to_string(), dict(src.schema["properties"]))
        feats = [
            {"geometry": f.geometry, "properties": dict(f.properties)} for f in src
        ]
    return meta, feats


@pytest.fixture
def two_versions(conn: Conn, settings: Settings, tmp_path: Path) -> Layer:
    """Version 1: 10 places; version 2: 8 of them, one renamed (key: ID)."""
    layer = make_layer(conn, key_column="ID")
    load(conn, settings, layer, files.make_shapefile_zip(tmp_path / "v1"))
    v2 = files.make_shapefile_zip(tmp_path / "v2", n=8)
    load(conn, settings, layer, v2)
    return registry.get_layer(conn, layer.slug)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_each_version_downloads_as_it_was(
    fmt: str, conn: Conn, settings: Settings, two_versions: Layer, tmp_path: Path
) -> None:
    layer = two_versions
    out = tmp_path / "out"
    out.mkdir()
    for number, count in ((1, 10), (2, 8)):
        version = registry.get_version(conn, layer.id, number)
        path = export_version(conn, layer, version, fmt, out, srid=4326)
        assert path.name == f"landsd_places_v{number}.{fmt}"
        (driver, crs, props), feats = read(path)
        assert driver == {"gpkg": "GPKG", "geojson": "GeoJSON"}[fmt]
        assert crs in ("EPSG:4326", "OGC:CRS84")
        assert list(props) == ["ID", "NAME_EN", "NAME_TC", "AREA_M2", "SURVEYED"]
        assert props["ID"].startswith("int") and props["SURVEYED"] == "date"
        assert len(feats) == count
        by_id = {f["properties"]["ID"]: f for f in feats}
        # Chinese (including HKSCS-only characters) intact.
        assert by_id[3]["properties"]["NAME_TC"] == "鰂魚涌"
        assert by_id[6]["properties"]["NAME_TC"] == "鴨脷洲"
        assert by_id[1]["properties"]["SURVEYED"] == "2020-01-01"
        lon, lat = by_id[1]["geometry"].coordinates
        assert lon == pytest.approx(114.1588, abs=1e-5)
        assert lat == pytest.approx(22.2816, abs=1e-5)


def test_export_from_a_projected_store(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    hk80 = settings.with_(storage_srid=2326)
    layer = make_layer(conn)
    load(conn, hk80, layer, files.make_shapefile_zip(tmp_path, geometry="Polygon"))
    version = registry.get_version(conn, layer.id, 1)
    path = export_version(conn, layer, version, "gpkg", tmp_path, srid=2326)
    (_, crs, _), feats = read(path)
    assert crs == "EPSG:4326" and len(feats) == 10
    ring = feats[0]["geometry"].coordinates[0]
    assert all(113.8 < x < 114.5 and 22.1 < y < 22.6 for x, y in ring)


def test_times_and_odd_names_survive(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    layer = make_layer(conn)
    features = [
        {
            "type": "Feature",
            "properties": {"fid": i, "開放時間": "09:30:00", "名稱 name": f"公園{i}"},
            "geometry": {"type": "Point", "coordinates": [836000 + i, 817000]},
        }
        for i in range(3)
    ]
    load(conn, settings, layer, write_geojson(tmp_path / "parks.geojson", features))
    version = registry.get_version(conn, layer.id, 1)
    for fmt in ("gpkg", "geojson"):
        path = export_version(conn, layer, version, fmt, tmp_path, srid=4326)
        _, feats = read(path)
        assert [f["properties"]["名稱 name"] for f in feats] == [
            "公園0",
            "公園1",
            "公園2",
        ]
        assert feats[0]["properties"]["fid"] == 0


def test_unknown_format_is_refused(
    conn: Conn, settings: Settings, two_versions: Layer, tmp_path: Path
) -> None:
    version = registry.get_version(conn, two_versions.id, 1)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BadInputError, match="choose one of gpkg, geojson"):
        export_version(conn, two_versions, version, "shp", out, srid=4326)
    assert list(out.iterdir()) == []


def test_preview_is_bounded_and_in_wgs84(
    conn: Conn, settings: Settings, two_versions: Layer
) -> None:
    layer = two_versions
    v1 = registry.get_version(conn, layer.id, 1)
    full = preview_features(conn, layer, v1, srid=4326)
    assert full["numberMatched"] == full["numberReturned"] == 10
    assert full["simplified"] == 0  # points are never simplified
    names = {f["properties"]["NAME_TC"] for f in full["features"]}
    assert "鴨脷洲" in names
    lon, lat = full["features"][0]["geometry"]["coordinates"]
    assert 113.8 < lon < 114.5 and 22.1 < lat < 22.6
    sample = preview_features(conn, layer, v1, srid=4326, limit=4)
    assert sample["numberMatched"] == 10 and sample["numberReturned"] == 4
    again = preview_features(conn, layer, v1, srid=4326, limit=4)
    assert [f["id"] for f in sample["features"]] == [f["id"] for f in again["features"]]


def test_preview_simplifies_polygons(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    layer = make_layer(conn)
    load(conn, settings, layer, files.make_shapefile_zip(tmp_path, geometry="Polygon"))
    version = registry.get_version(conn, layer.id, 1)
    preview = preview_features(conn, layer, version, srid=4326)
    assert preview["simplified"] > 0
    assert preview["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_schema_change_and_summary(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    layer = make_layer(conn)
    load(conn, settings, layer, files.make_shapefile_zip(tmp_path))
    features = [
        {
            "type": "Feature",
            "properties": {"ID": f"P{i}", "NAME_EN": "x", "OPENED": "2021-01-01"},
            "geometry": {"type": "Point", "coordinates": [836000 + i, 817000]},
        }
        for i in range(4)
    ]
    load(conn, settings, layer, write_geojson(tmp_path / "v2.geojson", features))
    layer = registry.get_layer(conn, layer.slug)
    v1, v2 = registry.list_versions(conn, layer.id)
    change = schema_change(v1, v2)
    assert [f["name"] for f in change["added"]] == ["OPENED"]
    assert [f["name"] for f in change["removed"]] == ["NAME_TC", "AREA_M2", "SURVEYED"]
    assert change["retyped"] == [{"name": "ID", "from": "bigint", "to": "text"}]
    assert change["geometry_type"] is None
    first = schema_change(None, v1)
    assert len(first["added"]) == 5 and not first["removed"]

    summary = version_summary(layer, v2, v1, uploaded_by="tester@example.org")
    assert summary["number"] == 2 and summary["feature_count"] == 4
    assert summary["diff"] == {"added": 4, "changed": 0, "removed": 10, "unchanged": 0}
    assert summary["published"] is False and summary["repaired"] == 0
    assert summary["source"]["filename"] == "v2.geojson"
    assert summary["extent"] is not None and len(summary["extent"]) == 4

    history = layer_history(conn, layer)
    assert [h["action"] for h in history] == ["ingest", "ingest", "create"]
    assert uploaders(history) == {1: "tester@example.org", 2: "tester@example.org"}
