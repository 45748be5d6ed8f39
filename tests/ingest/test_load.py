"""The loader: versions, diffs, repairs and all-or-nothing transactions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pyproj import Transformer

from sdi import registry
from sdi.errors import IngestError
from sdi.ingest import ingest_file
from sdi.settings import Settings

Conn = psycopg.Connection[Any]
TO_WGS84 = Transformer.from_crs("EPSG:2326", "EPSG:4326", always_xy=True)


def square(e: float, n: float, size: float = 10.0) -> list[list[list[float]]]:
    """A closed square ring in the Hong Kong 1980 Grid."""
    return [[[e, n], [e + size, n], [e + size, n + size], [e, n + size], [e, n]]]


def feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def write_geojson(path: Path, features: list[dict[str, Any]], epsg: int = 2326) -> Path:
    """A GeoJSON file with a named CRS (GDAL honours it)."""
    doc = {
        "type": "FeatureCollection",
        "crs": {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        },
        "features": features,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def buildings(ids: range, *, renamed: set[int] = frozenset()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    out = []
    for i in ids:
        name = f"大廈 {i}" + (" (新)" if i in renamed else "")
        out.append(
            feature(
                {
                    "BLDG_ID": f"B{i:04d}",
                    "NAME_EN": f"Building {i}",
                    "NAME_TC": name,
                    "STOREYS": i % 40 + 1,
                },
                {"type": "Polygon", "coordinates": square(833000 + i * 20, 816000)},
            )
        )
    return out


@pytest.fixture
def layer(conn: Conn) -> registry.Layer:
    agency = registry.create_agency(conn, "landsd", "Lands Department", "地政總署")
    return registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug="landsd_buildings",
            title_en="Buildings",
            title_zh="建築物",
            licence_id=registry.get_licence(conn, "hk-csdi").id,
            key_column="BLDG_ID",
        ),
    )


def rows_in_version(conn: Conn, slug: str, n: int) -> dict[str, str]:
    query = (
        f'SELECT "BLDG_ID", "NAME_TC" FROM sdi_data.{slug} '  # noqa: S608 (test data)
        "WHERE _sdi_from <= %s AND (_sdi_to IS NULL OR _sdi_to > %s)"
    )
    return dict(conn.execute(query.encode(), (n, n)).fetchall())


def test_first_version_records_everything(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    path = write_geojson(tmp_path / "b.geojson", buildings(range(50)))
    version = ingest_file(conn, settings, path, layer=layer.slug)
    assert version.number == 1
    assert version.feature_count == 50
    assert version.source_crs == "EPSG:2326"
    assert version.diff == {"added": 50, "changed": 0, "removed": 0, "unchanged": 0}
    assert version.geometry_type == "Polygon"
    names = [f["name"] for f in version.schema["fields"]]
    assert names == ["BLDG_ID", "NAME_EN", "NAME_TC", "STOREYS"]
    # extent in WGS 84 agrees with pyproj's transformation of the corners
    lon, lat = TO_WGS84.transform(833000, 816000)
    assert version.extent is not None
    assert version.extent[0] == pytest.approx(lon, abs=1e-7)
    assert version.extent[1] == pytest.approx(lat, abs=1e-7)
    assert rows_in_version(conn, layer.slug, 1)["B0007"] == "大廈 7"
    assert registry.get_layer(conn, layer.slug).published_version is None


def test_second_version_stores_only_changes(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    ingest_file(
        conn,
        settings,
        write_geojson(tmp_path / "v1.geojson", buildings(range(100))),
        layer=layer.slug,
    )
    # v2: 0-9 removed, 10-14 renamed, 100-119 new
    v2_features = buildings(range(10, 120), renamed={10, 11, 12, 13, 14})
    version = ingest_file(
        conn,
        settings,
        write_geojson(tmp_path / "v2.geojson", v2_features),
        layer=layer.slug,
    )
    assert version.number == 2
    assert version.diff == {"added": 20, "changed": 5, "removed": 10, "unchanged": 85}
    total = conn.execute("SELECT count(*) FROM sdi_data.landsd_buildings").fetchone()
    assert total is not None and total[0] == 100 + 20 + 5  # not 100 + 110
    v1 = rows_in_version(conn, layer.slug, 1)
    v2 = rows_in_version(conn, layer.slug, 2)
    assert len(v1) == 100 and len(v2) == 110
    assert v1["B0010"] == "大廈 10" and v2["B0010"] == "大廈 10 (新)"
    assert "B0003" in v1 and "B0003" not in v2
    # time travel still works after a rollback pointer move
    registry.publish(conn, layer.slug, 1)
    assert registry.get_layer(conn, layer.slug).published_version == 1


def test_identical_upload_adds_no_rows(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    path = write_geojson(tmp_path / "b.geojson", buildings(range(30)))
    ingest_file(conn, settings, path, layer=layer.slug)
    version = ingest_file(conn, settings, path, layer=layer.slug)
    assert version.diff == {"added": 0, "changed": 0, "removed": 0, "unchanged": 30}
    total = conn.execute("SELECT count(*) FROM sdi_data.landsd_buildings").fetchone()
    assert total is not None and total[0] == 30


def test_content_hash_matching_without_key(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    agency = registry.create_agency(conn, "td", "Transport Department")
    registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug="td_stops",
            title_en="Stops",
            licence_id=registry.get_licence(conn, "cc-by-4.0").id,
        ),
    )
    pt = {"type": "Point", "coordinates": [835000, 818000]}
    same = feature({"name": "站"}, pt)
    v1 = [same, same, feature({"name": "A"}, pt)]  # two identical features
    ingest_file(
        conn, settings, write_geojson(tmp_path / "1.geojson", v1), layer="td_stops"
    )
    v2 = [same, feature({"name": "B"}, pt)]
    version = ingest_file(
        conn, settings, write_geojson(tmp_path / "2.geojson", v2), layer="td_stops"
    )
    # one duplicate and "A" vanished; "B" is new; content matching has no "changed"
    assert version.diff == {"added": 1, "changed": 0, "removed": 2, "unchanged": 1}


def test_invalid_and_empty_geometries_are_repaired_and_counted(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    bowtie = [
        [
            [833000, 816000],
            [833010, 816010],
            [833010, 816000],
            [833000, 816010],
            [833000, 816000],
        ]
    ]
    feats = [
        *buildings(range(5)),
        feature(
            {"BLDG_ID": "BAD", "NAME_EN": "x", "NAME_TC": "蝴蝶", "STOREYS": 1},
            {"type": "Polygon", "coordinates": bowtie},
        ),
        feature(
            {"BLDG_ID": "NONE", "NAME_EN": "y", "NAME_TC": "無", "STOREYS": 1}, None
        ),
    ]
    version = ingest_file(
        conn, settings, write_geojson(tmp_path / "b.geojson", feats), layer=layer.slug
    )
    assert version.report["repaired"] == 1
    assert version.report["empty"] == 1
    assert version.feature_count == 7
    row = conn.execute(
        "SELECT bool_and(ST_IsValid(_sdi_geom)),"
        " count(DISTINCT GeometryType(_sdi_geom))"
        " FROM sdi_data.landsd_buildings WHERE _sdi_geom IS NOT NULL"
    ).fetchone()
    assert row == (True, 1)  # repaired bowtie is a multipolygon: all promoted
    assert version.geometry_type == "MultiPolygon"


def test_failure_leaves_nothing_behind(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    feats = buildings(range(20))
    feats[-1]["properties"]["BLDG_ID"] = "B0000"  # duplicate key in the last record
    with pytest.raises(IngestError, match="not unique: 'B0000'"):
        ingest_file(
            conn,
            settings,
            write_geojson(tmp_path / "b.geojson", feats),
            layer=layer.slug,
        )
    table = conn.execute("SELECT to_regclass('sdi_data.landsd_buildings')").fetchone()
    assert table == (None,)
    assert registry.list_versions(conn, layer.id) == []
    audit = registry.audit.list_audit(conn, object_type="layer", object_id=layer.slug)
    assert [a.action for a in audit] == ["create"]


def test_failed_new_version_keeps_published_one(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    ingest_file(
        conn,
        settings,
        write_geojson(tmp_path / "v1.geojson", buildings(range(10))),
        layer=layer.slug,
    )
    registry.publish(conn, layer.slug, 1)
    bad = buildings(range(10))
    for f in bad:
        f["properties"]["EXTRA"] = "new column"
    bad[5]["properties"]["BLDG_ID"] = None
    with pytest.raises(IngestError, match="empty in 1 feature"):
        ingest_file(
            conn,
            settings,
            write_geojson(tmp_path / "v2.geojson", bad),
            layer=layer.slug,
        )
    assert registry.get_layer(conn, layer.slug).published_version == 1
    assert [v.number for v in registry.list_versions(conn, layer.id)] == [1]
    columns = conn.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'sdi_data' AND column_name = 'EXTRA'"
    ).fetchone()
    assert columns == (0,)
    assert len(rows_in_version(conn, layer.slug, 1)) == 10


def test_missing_key_column_is_refused(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    feats = [feature({"OTHER": 1}, {"type": "Point", "coordinates": [833000, 816000]})]
    with pytest.raises(IngestError, match="key column 'BLDG_ID'"):
        ingest_file(
            conn,
            settings,
            write_geojson(tmp_path / "b.geojson", feats),
            layer=layer.slug,
        )


def test_type_change_widens_column_and_keeps_old_values(
    conn: Conn, settings: Settings, layer: registry.Layer, tmp_path: Path
) -> None:
    ingest_file(
        conn,
        settings,
        write_geojson(tmp_path / "v1.geojson", buildings(range(3))),
        layer=layer.slug,
    )
    feats = buildings(range(3))
    for f in feats:
        f["properties"]["STOREYS"] = "G/F + 3"
    version = ingest_file(
        conn, settings, write_geojson(tmp_path / "v2.geojson", feats), layer=layer.slug
    )
    types = {f["name"]: f["type"] for f in version.schema["fields"]}
    assert types["STOREYS"] == "text"
    old = conn.execute(
        'SELECT "STOREYS" FROM sdi_data.landsd_buildings WHERE _sdi_to = 2 '
        'ORDER BY "BLDG_ID"'
    ).fetchall()
    assert [r[0] for r in old] == ["1", "2", "3"]


def test_awkward_attribute_names(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    agency = registry.create_agency(conn, "hyd", "Highways Department")
    registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug="hyd_odd",
            title_en="Odd",
            licence_id=registry.get_licence(conn, "odbl-1.0").id,
        ),
    )
    props = {
        "select": "s",
        'na"me': "q",
        "名稱": "中文",
        "Robert'); DROP TABLE x;--": 1,
    }
    feats = [feature(props, {"type": "Point", "coordinates": [835000, 818000]})]
    version = ingest_file(
        conn, settings, write_geojson(tmp_path / "o.geojson", feats), layer="hyd_odd"
    )
    assert {f["name"] for f in version.schema["fields"]} == set(props)
    row = conn.execute(
        'SELECT "select", "na""me", "名稱" FROM sdi_data.hyd_odd'
    ).fetchone()
    assert row == ("s", "q", "中文")
