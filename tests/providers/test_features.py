"""VersionedFeatureProvider against a real PostGIS: versions, filters, paging, CRS."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pygeoapi.crs import create_crs_transform_spec
from pygeoapi.provider.base import (
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pyproj import Transformer

from sdi.providers import VersionedFeatureProvider
from sdi.providers.crs import OutputCrs
from sdi.providers.sql import (
    FeatureQuery,
    LayerTable,
    changes_count_sql,
    changes_sql,
    count_sql,
    features_sql,
)
from sdi.publish import build_resources
from tests.api.layerdata import (
    BUILDING_FIELDS,
    Conn,
    add_version,
    buildings,
    buildings_layer,
)

SLUG = "landsd_buildings"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


def provider_def(conn: Conn, version: int | None = None) -> dict[str, Any]:
    definition = build_resources(conn, 4326)[SLUG]["providers"][0]
    if version is not None:
        definition["data"]["version"] = version
    return copy.deepcopy(definition)


def provider(conn: Conn, version: int | None = None) -> VersionedFeatureProvider:
    return VersionedFeatureProvider(provider_def(conn, version))


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


def test_fields_come_from_the_configuration_in_file_order(layer: Conn) -> None:
    fields = provider(layer).get_fields()
    assert list(fields) == [name for name, _ in BUILDING_FIELDS]
    assert fields["FLOORS"] == {"type": "integer"}
    assert fields["HEIGHT_M"] == {"type": "number"}
    assert fields["OPENED"] == {"type": "string", "format": "date"}
    assert fields["NAME_TC"] == {"type": "string"}


def test_first_page_and_count(layer: Conn) -> None:
    result = provider(layer).query(limit=10)
    assert result["type"] == "FeatureCollection"
    assert result["numberMatched"] == 25
    assert result["numberReturned"] == 10
    first = result["features"][0]
    assert first["type"] == "Feature"
    assert isinstance(first["id"], int)
    assert list(first["properties"]) == [name for name, _ in BUILDING_FIELDS]
    assert first["properties"]["NAME_TC"] == "大廈0號"
    assert first["properties"]["OPENED"] == "2000-01-01"
    assert first["properties"]["GREEN_%"] is None
    assert first["geometry"]["type"] == "Point"
    lon, lat = first["geometry"]["coordinates"]
    assert 114 < lon < 115 and 22 < lat < 23  # CRS84: longitude first


@pytest.mark.parametrize(("offset", "returned"), [(0, 10), (10, 10), (20, 5), (25, 0)])
def test_pages_know_the_total(layer: Conn, offset: int, returned: int) -> None:
    result = provider(layer).query(offset=offset, limit=10)
    assert result["numberReturned"] == returned
    assert result["numberMatched"] == 25


def test_pages_cover_everything_once(layer: Conn) -> None:
    p = provider(layer)
    seen: list[int] = []
    for offset in range(0, 30, 7):
        seen += [f["id"] for f in p.query(offset=offset, limit=7)["features"]]
    assert len(seen) == 25 and len(set(seen)) == 25


def test_hits_only_counts(layer: Conn) -> None:
    result = provider(layer).query(resulttype="hits", properties=[("FLOORS", "3")])
    assert result["numberMatched"] == 1 and result["features"] == []


def test_count_can_be_switched_off(layer: Conn) -> None:
    definition = provider_def(layer)
    definition["count"] = False
    result = VersionedFeatureProvider(definition).query(limit=10)
    assert "numberMatched" not in result and result["numberReturned"] == 10


def test_version_filter_and_stable_ids(layer: Conn) -> None:
    v1 = {
        f["properties"]["BLDG_ID"]: f
        for f in provider(layer).query(limit=100)["features"]
    }
    # v2: building 0-4 removed, 5 renamed, 25-27 added, the rest unchanged
    add_version(layer, SLUG, buildings(range(5, 28), renamed=frozenset({5})))
    old = provider(layer, version=1).query(limit=100)
    new = provider(layer, version=2).query(limit=100)
    assert old["numberMatched"] == 25 and new["numberMatched"] == 23
    v2 = {f["properties"]["BLDG_ID"]: f for f in new["features"]}
    assert "B0000" not in v2 and "B0027" in v2
    assert v2["B0005"]["properties"]["NAME_EN"] == "Building 5 (new)"
    assert v2["B0005"]["id"] != v1["B0005"]["id"]  # a changed feature is a new row
    assert v2["B0010"]["id"] == v1["B0010"]["id"]  # an unchanged one keeps its id
    with pytest.raises(ProviderItemNotFoundError):
        provider(layer, version=2).get(v1["B0000"]["id"])
    assert provider(layer, version=1).get(v1["B0000"]["id"])["id"] == v1["B0000"]["id"]


def test_bbox(layer: Conn) -> None:
    # buildings 0, 5, 10, 15, 20 lie at longitude 114.15..114.152
    result = provider(layer).query(bbox=[114.149, 22.0, 114.1525, 23.0], limit=100)
    ids = sorted(f["properties"]["BLDG_ID"] for f in result["features"])
    assert ids == ["B0000", "B0005", "B0010", "B0015", "B0020"]
    assert result["numberMatched"] == 5
    six = provider(layer).query(bbox=[114.149, 22.0, -1, 114.1525, 23.0, 1], limit=100)
    assert six["numberMatched"] == 5


def test_property_filters_are_typed_by_the_column(layer: Conn) -> None:
    p = provider(layer)
    assert p.query(properties=[("NAME_TC", "大廈7號")])["numberMatched"] == 1
    assert (
        p.query(properties=[("FLOORS", "8")])["features"][0]["properties"]["BLDG_ID"]
        == "B0007"
    )
    assert p.query(properties=[("OPENED", "2003-04-01")])["numberMatched"] == 1
    with pytest.raises(ProviderInvalidQueryError, match="does not fit"):
        p.query(properties=[("FLOORS", "eight")])
    with pytest.raises(ProviderInvalidQueryError, match="Unknown property"):
        p.query(properties=[("nope", "1")])


def test_sortby_then_id(layer: Conn) -> None:
    result = provider(layer).query(
        sortby=[{"property": "FLOORS", "order": "-"}], limit=3
    )
    floors = [f["properties"]["FLOORS"] for f in result["features"]]
    assert floors == sorted(floors, reverse=True) and floors[0] == 25


def test_select_properties_and_skip_geometry(layer: Conn) -> None:
    result = provider(layer).query(
        select_properties=["NAME_TC", "BLDG_ID"], skip_geometry=True, limit=1
    )
    feature = result["features"][0]
    assert list(feature["properties"]) == ["BLDG_ID", "NAME_TC"]  # file order
    assert feature["geometry"] is None


def test_percent_in_an_attribute_name(layer: Conn) -> None:
    result = provider(layer).query(properties=[("GREEN_%", "0.08")])
    assert [f["properties"]["BLDG_ID"] for f in result["features"]] == ["B0008"]


def test_get_by_id(layer: Conn) -> None:
    p = provider(layer)
    fid = p.query(limit=1)["features"][0]["id"]
    assert p.get(fid)["properties"]["BLDG_ID"] == "B0000"
    assert p.get(str(fid))["id"] == fid
    for missing in ("999999", "abc", "-1", "1.5", "", "1; DROP TABLE x"):
        with pytest.raises(ProviderItemNotFoundError):
            p.get(missing)


def test_output_in_hk1980_grid_matches_pyproj(layer: Conn) -> None:
    definition = provider_def(layer)
    spec = create_crs_transform_spec(definition, EPSG.format(2326))
    p = VersionedFeatureProvider(definition)
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326")  # authority order
    native = {f["id"]: f for f in p.query(limit=100)["features"]}
    for feature in p.query(limit=100, crs_transform_spec=spec)["features"]:
        lon, lat = native[feature["id"]]["geometry"]["coordinates"]
        northing, easting = to_grid.transform(lat, lon)
        got_n, got_e = feature["geometry"]["coordinates"]
        assert 800_000 < got_n < 850_000 and 820_000 < got_e < 850_000
        assert abs(got_n - northing) < 0.05 and abs(got_e - easting) < 0.05
    single = p.get(feature["id"], crs_transform_spec=spec)
    assert single["geometry"]["coordinates"] == feature["geometry"]["coordinates"]


def test_epsg_4326_is_latitude_first_and_3857_is_metres(layer: Conn) -> None:
    definition = provider_def(layer)
    p = VersionedFeatureProvider(definition)
    lon, lat = p.query(limit=1)["features"][0]["geometry"]["coordinates"]
    spec = create_crs_transform_spec(definition, EPSG.format(4326))
    assert p.query(limit=1, crs_transform_spec=spec)["features"][0]["geometry"][
        "coordinates"
    ] == [lat, lon]
    spec = create_crs_transform_spec(definition, EPSG.format(3857))
    x, y = p.query(limit=1, crs_transform_spec=spec)["features"][0]["geometry"][
        "coordinates"
    ]
    ex, ey = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(
        lon, lat
    )
    assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bbox": [1, 2, 3]},
        {"bbox": [114, 23, 115, 22]},
        {"bbox": ["a", 1, 2, 3]},
        {"bbox": [float("nan"), 1, 2, 3]},
        {"limit": 0},
        {"offset": -1},
        {"sortby": [{"property": "nope", "order": "+"}]},
        {"select_properties": ["nope"]},
        {"resulttype": "everything"},
        {"filterq": object()},
        {"datetime_": "2020-01-01"},  # no time attribute configured
    ],
)
def test_bad_requests_are_invalid_queries(layer: Conn, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ProviderInvalidQueryError):
        provider(layer).query(**kwargs)


def test_datetime_on_the_time_attribute(db: Conn) -> None:
    from tests.api.layerdata import create_layer

    create_layer(db, SLUG, time_column="OPENED")
    add_version(db, SLUG, buildings(range(25)))
    definition = provider_def(db)
    assert definition["time_field"] == "OPENED"
    p = VersionedFeatureProvider(definition)
    assert p.query(datetime_="2003-04-01")["numberMatched"] == 1
    assert p.query(datetime_="2018-01-01/..")["numberMatched"] == 2  # 18 and 19
    assert p.query(datetime_="../2000-12-31")["numberMatched"] == 2  # 0 and 20
    with pytest.raises(ProviderInvalidQueryError):
        p.query(datetime_="2020-13-45")


def test_missing_database_url_is_a_provider_error(
    layer: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = provider(layer)
    monkeypatch.delenv("SDI_DATABASE_URL")
    with pytest.raises(ProviderGenericError, match="SDI_DATABASE_URL"):
        p.query()


@pytest.mark.parametrize(
    "change",
    [
        {"table": "x; DROP TABLE y"},
        {"version": "1"},
        {"srid": None},
        {"fields": ["a"]},
    ],
)
def test_bad_configuration_is_refused(layer: Conn, change: dict[str, Any]) -> None:
    definition = provider_def(layer)
    definition["data"].update(change)
    with pytest.raises(ProviderGenericError, match="configuration"):
        VersionedFeatureProvider(definition)


def test_cql2_filters_from_pygeoapi(layer: Conn) -> None:
    from sdi.providers.cql2 import parse_filter

    p = provider(layer)
    result = p.query(filterq=parse_filter("FLOORS > 22"), limit=100)
    assert result["numberMatched"] == 3
    spatial = parse_filter(
        "S_INTERSECTS(geometry, BBOX(114.149, 22.0, 114.1525, 23.0))"
    )
    assert p.query(filterq=spatial)["numberMatched"] == 5
    with pytest.raises(ProviderInvalidQueryError):
        p.query(filterq=parse_filter("NOPE = 1"))


# -- the statements sdi's own handlers run ------------------------------------


def _table(conn: Conn, version: int) -> LayerTable:
    return LayerTable(SLUG, version, 4326, tuple(n for n, _ in BUILDING_FIELDS))


def _ids(conn: Conn, query: FeatureQuery, version: int = 1) -> list[int]:
    statement, params = features_sql(_table(conn, version), query)
    return [row[0] for row in conn.execute(statement, params)]


def test_keyset_pages_match_offset_pages(layer: Conn) -> None:
    output = OutputCrs(4326, False, 8)
    everything = _ids(layer, FeatureQuery(output=output, limit=100))
    assert len(everything) == 25
    after = everything[9]
    assert (
        _ids(layer, FeatureQuery(output=output, limit=7, after=after))
        == (everything[10:17])
    )
    assert (
        _ids(layer, FeatureQuery(output=output, limit=7, offset=10))
        == (everything[10:17])
    )
    # sortby pages by offset: the cursor does not apply
    by_height = FeatureQuery(
        output=output, limit=3, after=after, sortby=[("HEIGHT_M", True)]
    )
    assert _ids(layer, by_height) == everything[::-1][:3]
    _, params = features_sql(_table(layer, 1), FeatureQuery(output=output), extra=1)
    assert params["limit"] == 11


def test_rows_are_geojson_text(layer: Conn) -> None:
    query = FeatureQuery(output=OutputCrs(4326, False, 8), limit=1, select=("NAME_TC",))
    statement, params = features_sql(_table(layer, 1), query)
    fid, text = layer.execute(statement, params).fetchone() or (None, None)
    assert isinstance(text, str)
    feature = json.loads(text)
    assert feature["id"] == fid and feature["properties"] == {"NAME_TC": "大廈0號"}
    query.skip_geometry, query.select = True, ()
    statement, params = features_sql(_table(layer, 1), query)
    row = layer.execute(statement, params).fetchone()
    assert row is not None
    assert json.loads(row[1]) == {
        "type": "Feature",
        "id": fid,
        "geometry": None,
        "properties": {},
    }


def test_capped_counts(layer: Conn) -> None:
    query = FeatureQuery(output=OutputCrs(4326, False, 8), equals=[])
    query.envelopes = [(114.0, 22.0, 115.0, 23.0)]
    for cap, expected in ((None, 25), (30, 25), (25, 25), (10, 11)):
        statement, params = count_sql(_table(layer, 1), query, cap=cap)
        assert layer.execute(statement, params).fetchone() == (expected,)
    assert query.filtered and not FeatureQuery(output=query.output).filtered


def test_envelopes_in_another_crs(layer: Conn) -> None:
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    e0, n0 = to_grid.transform(114.149, 22.27)
    e1, n1 = to_grid.transform(114.1525, 22.33)
    query = FeatureQuery(
        output=OutputCrs(4326, False, 8),
        limit=100,
        envelopes=[(e0, n0, e1, n1)],
        envelope_srid=2326,
    )
    assert len(_ids(layer, query)) == 5


def test_changes_statements(layer: Conn) -> None:
    add_version(layer, SLUG, buildings(range(5, 28), renamed=frozenset({5})))
    old, new = _table(layer, 1), _table(layer, 2)
    statement, params = changes_count_sql(old, new)
    assert layer.execute(statement, params).fetchone() == (3, 1, 5)
    statement, params = changes_sql(
        old, new, OutputCrs(4326, False, 8), offset=0, limit=4
    )
    rows = layer.execute(statement, params).fetchall()
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and len(rows) == 4
    changes = {
        json.loads(r[1])["properties"]["BLDG_ID"]: json.loads(r[1])["change"]
        for r in rows
    }
    assert changes == {f"B{i:04d}": "removed" for i in range(4)}
    statement, params = changes_count_sql(new, new)
    assert layer.execute(statement, params).fetchone() == (0, 0, 0)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {
            "envelopes": [(1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)],
            "envelope_srid": 2326,
        },
        {"equals": [("FLOORS", "3"), ("NAME_TC", "x")]},
        {"time_instant": "2020-01-01"},
        {"time_range": ("2020-01-01", None)},
        {"time_range": (None, "2020-01-01")},
        {"sortby": [("FLOORS", True)], "after": 5, "offset": 3},
        {"after": 5, "offset": 3, "select": ("NAME_EN",), "skip_geometry": True},
    ],
)
def test_reused_statements_bind_what_composed_ones_do(change: dict[str, Any]) -> None:
    from sdi.providers import sql as feature_sql_module

    layer = LayerTable(SLUG, 2, 4326, ("FLOORS", "NAME_TC", "OPENED"), "OPENED")
    query = FeatureQuery(output=OutputCrs(4326, False, 8), limit=7, **change)
    composed, composed_params = feature_sql_module._compose_features(layer, query, 1)
    first, params = features_sql(layer, query, extra=1)
    again, again_params = features_sql(layer, query, extra=1)
    assert params == composed_params == again_params
    assert first is again
    assert first.as_string(None) == composed.as_string(None)
