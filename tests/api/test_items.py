"""sdi's items handler over real HTTP: paging, counts, parameters, CRS, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pyproj import Transformer
from werkzeug.serving import make_server

from sdi.api import create_app, features, live_api
from sdi.providers import close_pools
from sdi.settings import Settings
from tests.api.conftest import Server
from tests.api.layerdata import (
    Conn,
    add_version,
    buildings,
    buildings_layer,
    create_layer,
)

SLUG = "landsd_buildings"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, timeout=30)


def items_url(server: Server, slug: str = SLUG) -> str:
    return f"{server.url}/collections/{slug}/items"


def items(server: Server, slug: str = SLUG, **params: Any) -> dict[str, Any]:
    response = get(items_url(server, slug), **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def link(body: dict[str, Any], rel: str) -> str | None:
    return next((lk["href"] for lk in body["links"] if lk["rel"] == rel), None)


def walk(url: str | None, rel: str = "next") -> list[dict[str, Any]]:
    pages = []
    while url:
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = link(pages[-1], rel)
        assert len(pages) < 100
    return pages


def assert_ogc_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "type", "description"}, body
    assert body["code"] and body["description"]


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


@pytest.fixture
def small_limits(api_settings: Settings) -> Iterator[Server]:
    """A server whose pages hold at most 4 features (default 3)."""
    settings = api_settings.with_(limit_max=4, limit_default=3)
    app = create_app(settings)
    httpd = make_server(settings.host, settings.port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(settings.public_url, app, settings)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        live_api(app).close()
        close_pools()


# -- paging and counts ------------------------------------------------------


def test_response_shape_and_licence(layer: Conn, server: Server) -> None:
    response = get(items_url(server), limit=2)
    assert response.headers["Content-Type"] == "application/geo+json"
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    body = response.json()
    assert list(body) == [
        "type",
        "features",
        "numberMatched",
        "numberReturned",
        "links",
        "timeStamp",
    ]
    assert body["numberMatched"] == 25 and body["numberReturned"] == 2
    rels = [lk["rel"] for lk in body["links"]]
    assert rels == ["self", "alternate", "alternate", "next", "collection", "license"]
    licence = body["links"][-1]
    assert licence["href"] == "https://portal.csdi.gov.hk/csdi-webpage/doc/TNC"
    assert licence["type"] == "text/html"
    feature = body["features"][0]
    assert list(feature) == ["type", "id", "geometry", "properties"]
    html = get(items_url(server), f="html")
    assert html.status_code == 200 and 'rel="license"' in html.text
    assert licence["href"] in html.text


def test_next_links_walk_every_feature_once(layer: Conn, server: Server) -> None:
    pages = walk(f"{items_url(server)}?limit=7")
    assert [p["numberReturned"] for p in pages] == [7, 7, 7, 4]
    assert all(p["numberMatched"] == 25 for p in pages)
    ids = [f["id"] for p in pages for f in p["features"]]
    assert len(ids) == 25 and ids == sorted(set(ids))
    nexts = [link(p, "next") for p in pages[:-1]]
    assert all(n is not None and "after=" in n and "version=1" in n for n in nexts)
    assert link(pages[-1], "next") is None and link(pages[0], "prev") is None
    # back again with prev links, page by page
    back = walk(link(pages[-1], "prev"), "prev")
    assert [[f["id"] for f in p["features"]] for p in back] == [
        [f["id"] for f in p["features"]] for p in reversed(pages[:-1])
    ]


def test_offset_paging_agrees_with_the_cursor(layer: Conn, server: Server) -> None:
    by_offset = [
        f["id"]
        for offset in range(0, 25, 6)
        for f in items(server, limit=6, offset=offset)["features"]
    ]
    by_cursor = [
        f["id"] for p in walk(f"{items_url(server)}?limit=6") for f in p["features"]
    ]
    assert by_offset == by_cursor
    assert items(server, offset=25)["features"] == []
    assert items(server, offset=1000)["numberReturned"] == 0


def test_sorted_pages_walk_every_feature_once(layer: Conn, server: Server) -> None:
    pages = walk(f"{items_url(server)}?limit=4&sortby=-FLOORS,NAME_EN")
    floors = [f["properties"]["FLOORS"] for p in pages for f in p["features"]]
    assert len(floors) == 25 and floors == sorted(floors, reverse=True)
    assert all("after=" not in (link(p, "next") or "") for p in pages)


def test_filtered_pages_and_counts(layer: Conn, server: Server) -> None:
    pages = walk(f"{items_url(server)}?limit=2&bbox=114.149,22.0,114.1525,23.0")
    ids = [f["properties"]["BLDG_ID"] for p in pages for f in p["features"]]
    assert ids == ["B0000", "B0005", "B0010", "B0015", "B0020"]
    assert all(p["numberMatched"] == 5 for p in pages)
    assert items(server, FLOORS=8)["numberMatched"] == 1
    assert items(server, FLOORS=99)["numberMatched"] == 0


def test_counts_over_the_cap_are_left_out(
    layer: Conn, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(features, "COUNT_CAP", 3)
    first = items(server, limit=2, filter="FLOORS > 5")  # 20 match
    assert "numberMatched" not in first and first["numberReturned"] == 2
    last = items(server, limit=2, offset=19, filter="FLOORS > 5")
    assert last["numberMatched"] == 20 and last["numberReturned"] == 1
    few = items(server, limit=2, filter="FLOORS > 22")  # 3 match: counted
    assert few["numberMatched"] == 3
    hits = items(server, resulttype="hits", filter="FLOORS > 5")
    assert hits["numberMatched"] == 20 and hits["features"] == []
    # without a filter the version's count is known, cap or not
    assert items(server, limit=1)["numberMatched"] == 25


def test_limit_is_clamped(layer: Conn, small_limits: Server) -> None:
    assert items(small_limits)["numberReturned"] == 3
    body = items(small_limits, limit=1000)
    assert body["numberReturned"] == 4
    assert "offset=4" in (link(body, "next") or "")


def test_large_pages_are_streamed(db: Conn, server: Server) -> None:
    buildings_layer(db, SLUG, 1300)
    response = requests.get(
        items_url(server), params={"limit": 600}, stream=True, timeout=60
    )
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    body = response.json()
    assert body["numberReturned"] == 600 and body["numberMatched"] == 1300
    pages = walk(f"{items_url(server)}?limit=600")
    ids = [f["id"] for p in pages for f in p["features"]]
    assert [p["numberReturned"] for p in pages] == [600, 600, 100]
    assert len(ids) == 1300 and ids == sorted(set(ids))
    small = get(items_url(server), limit=10)
    assert int(small.headers["Content-Length"]) == len(small.content)


def test_abandoned_streams_give_their_connections_back(
    db: Conn, server: Server
) -> None:
    buildings_layer(db, SLUG, 1300)
    for _ in range(3 * server.settings.pool_max):
        response = requests.get(
            items_url(server), params={"limit": 1300}, stream=True, timeout=60
        )
        next(response.iter_content(1024))
        response.close()
    assert items(server, limit=5)["numberReturned"] == 5
    deadline = time.monotonic() + 5
    while True:  # the server notices a closed socket on its next write
        busy = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'sdi-api' AND state <> 'idle'"
        ).fetchone()
        if busy == (0,) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert busy == (0,)


# -- parameters --------------------------------------------------------------


def test_bbox_four_six_and_in_the_hk_grid(layer: Conn, server: Server) -> None:
    expected = ["B0000", "B0005", "B0010", "B0015", "B0020"]

    def ids(**params: Any) -> list[str]:
        body = items(server, limit=100, **params)
        return sorted(f["properties"]["BLDG_ID"] for f in body["features"])

    assert ids(bbox="114.149,22.0,114.1525,23.0") == expected
    assert ids(bbox="114.149,22.0,-10,114.1525,23.0,10") == expected
    assert ids(
        bbox="22.0,114.149,23.0,114.1525", **{"bbox-crs": EPSG.format(4326)}
    ) == (expected)
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    e0, n0 = to_grid.transform(114.149, 22.27)
    e1, n1 = to_grid.transform(114.1525, 22.33)
    # EPSG:2326 is northing, easting
    assert ids(bbox=f"{n0},{e0},{n1},{e1}", **{"bbox-crs": EPSG.format(2326)}) == (
        expected
    )
    assert ids(bbox="114.2,22.0,114.3,22.1") == []


def test_output_crs(layer: Conn, server: Server) -> None:
    native = {
        f["id"]: f["geometry"]["coordinates"]
        for f in items(server, limit=100)["features"]
    }
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    grid = get(items_url(server), limit=100, crs=EPSG.format(2326))
    assert grid.headers["Content-Crs"] == f"<{EPSG.format(2326)}>"
    for feature in grid.json()["features"]:
        lon, lat = native[feature["id"]]
        easting, northing = to_grid.transform(lon, lat)
        got_n, got_e = feature["geometry"]["coordinates"]
        assert abs(got_n - northing) < 0.01 and abs(got_e - easting) < 0.01
    lat_first = get(items_url(server), limit=100, crs=EPSG.format(4326))
    assert lat_first.headers["Content-Crs"] == f"<{EPSG.format(4326)}>"
    for feature in lat_first.json()["features"]:
        lon, lat = native[feature["id"]]
        assert feature["geometry"]["coordinates"] == [lat, lon]
    merc = items(server, limit=100, crs=EPSG.format(3857))
    for feature in merc["features"]:
        x, y = to_merc.transform(*native[feature["id"]])
        got_x, got_y = feature["geometry"]["coordinates"]
        assert abs(got_x - x) < 0.01 and abs(got_y - y) < 0.01
    fid = next(iter(native))
    one = get(f"{items_url(server)}/{fid}", crs=EPSG.format(2326))
    assert one.headers["Content-Crs"] == f"<{EPSG.format(2326)}>"
    assert one.json()["geometry"] == next(
        f["geometry"] for f in grid.json()["features"] if f["id"] == fid
    )


def test_hk_grid_output_matches_postgis(layer: Conn, server: Server) -> None:
    stored = dict(
        layer.execute(
            "SELECT _sdi_fid, ARRAY[ST_Y(g), ST_X(g)] FROM (SELECT _sdi_fid,"
            " ST_Transform(_sdi_geom, 2326) AS g FROM sdi_data.landsd_buildings) s"
        ).fetchall()
    )
    for feature in items(server, limit=100, crs=EPSG.format(2326))["features"]:
        expected = stored[feature["id"]]
        got = feature["geometry"]["coordinates"]
        assert abs(got[0] - expected[0]) < 0.001 and abs(got[1] - expected[1]) < 0.001


def test_datetime_on_the_time_attribute(db: Conn, server: Server) -> None:
    create_layer(db, SLUG, time_column="OPENED")
    add_version(db, SLUG, buildings(range(25)))
    assert items(server, datetime="2003-04-01")["numberMatched"] == 1
    assert items(server, datetime="2018-01-01/..")["numberMatched"] == 2
    assert items(server, datetime="../2000-12-31")["numberMatched"] == 2
    assert items(server, datetime="2001-01-01/2002-12-31")["numberMatched"] == 4
    assert_ogc_error(get(items_url(server), datetime="yesterday"), 400)
    assert_ogc_error(get(items_url(server), datetime="2020-13-45"), 400)


def test_properties_sortby_and_skip_geometry(layer: Conn, server: Server) -> None:
    body = items(server, properties="NAME_EN,FLOORS", limit=2)
    assert list(body["features"][0]["properties"]) == ["NAME_EN", "FLOORS"]
    assert body["features"][0]["geometry"]["type"] == "Point"
    none = items(server, properties="", limit=1)
    assert none["features"][0]["properties"] == {}
    bare = items(server, skipGeometry="true", limit=1)
    assert bare["features"][0]["geometry"] is None
    assert bare["features"][0]["properties"]["BLDG_ID"] == "B0000"
    tallest = items(server, sortby="-HEIGHT_M", limit=3)
    assert [f["properties"]["BLDG_ID"] for f in tallest["features"]] == [
        "B0024",
        "B0023",
        "B0022",
    ]
    floors = items(server, sortby="+FLOORS,-BLDG_ID", limit=25)["features"]
    keys = [(f["properties"]["FLOORS"], f["properties"]["BLDG_ID"]) for f in floors]
    assert keys == sorted(keys, key=lambda k: (k[0], [-ord(c) for c in k[1]]))


def test_feature_by_id(layer: Conn, server: Server) -> None:
    fid = items(server, limit=1)["features"][0]["id"]
    response = get(f"{items_url(server)}/{fid}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/geo+json"
    feature = response.json()
    assert feature["id"] == fid and feature["properties"]["NAME_TC"] == "大廈0號"
    rels = [lk["rel"] for lk in feature["links"]]
    assert rels == [
        "root",
        "root",
        "self",
        "alternate",
        "alternate",
        "collection",
        "license",
    ]
    html = get(f"{items_url(server)}/{fid}", f="html")
    assert html.status_code == 200 and 'rel="license"' in html.text
    for missing in ("999999", "abc", "-1", "1.5", "1e3", "99999999999999999999"):
        assert_ogc_error(get(f"{items_url(server)}/{missing}"), 404)
    assert_ogc_error(get(f"{server.url}/collections/nope/items/1"), 404)
    assert_ogc_error(get(f"{server.url}/collections/nope/items"), 404)


def test_jsonld_is_still_served(layer: Conn, server: Server) -> None:
    response = get(items_url(server), f="jsonld", limit=2)
    assert response.status_code == 200, response.text
    assert "ld+json" in response.headers["Content-Type"]
    filtered = get(items_url(server), f="jsonld", filter="FLOORS > 22", limit=100)
    assert filtered.status_code == 200, filtered.text
    ids = {f["id"] for f in items(server, filter="FLOORS > 22")["features"]}
    assert {f"{items_url(server)}/{i}" for i in ids} == {
        node["@id"]
        for node in filtered.json()["features"]
        if "/items/" in node.get("@id", "")
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": "0"},
        {"limit": "-5"},
        {"limit": "1.5"},
        {"offset": "-1"},
        {"offset": "x"},
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "114,23,115,22"},
        {"bbox": "114,22,inf,23"},
        {"bbox": "114,22,115,23", "bbox-crs": EPSG.format(27700)},
        {"bbox-crs": EPSG.format(2326)},
        {"datetime": "2020-01-01"},  # no time attribute
        {"crs": EPSG.format(9999999)},
        {"crs": EPSG.format(27700)},
        {"sortby": "nope"},
        {"properties": "nope"},
        {"FLOORS": "eight"},
        {"filter": "FLOORS >"},
        {"filter": "NOPE = 1"},
        {"filter": "FLOORS = 1", "filter-lang": "sql"},
        {"filter": "FLOORS = 1", "filter-crs": EPSG.format(27700)},
        {"filter-lang": "cql2-text"},
        {"resulttype": "all"},
        {"version": "abc"},
        {"after": "x"},
        {"after": "3", "sortby": "FLOORS"},
        {"f": "xml"},
    ],
)
def test_bad_parameters_are_400_ogc_exceptions(
    layer: Conn, server: Server, params: dict[str, str]
) -> None:
    assert_ogc_error(get(items_url(server), **params), 400)


def test_cql2_filters(layer: Conn, server: Server) -> None:
    def ids(**params: Any) -> list[str]:
        body = items(server, limit=100, **params)
        return [f["properties"]["BLDG_ID"] for f in body["features"]]

    assert ids(filter="FLOORS > 22") == ["B0022", "B0023", "B0024"]
    assert ids(filter="NAME_EN LIKE 'Building 1_' AND FLOORS < 13") == [
        "B0010",
        "B0011",
    ]
    assert ids(
        filter="S_INTERSECTS(geometry, BBOX(114.149, 22.0, 114.1525, 23.0))"
    ) == ["B0000", "B0005", "B0010", "B0015", "B0020"]
    assert ids(
        filter='{"op": "=", "args": [{"property": "NAME_TC"}, "大廈7號"]}',
        **{"filter-lang": "cql2-json"},
    ) == ["B0007"]
    assert ids(filter="FLOORS > 22", BLDG_ID="B0023") == ["B0023"]
    lat_lon = "S_INTERSECTS(geometry, BBOX(22.0, 114.149, 23.0, 114.1525))"
    assert ids(filter=lat_lon, **{"filter-crs": EPSG.format(4326)}) == [
        "B0000",
        "B0005",
        "B0010",
        "B0015",
        "B0020",
    ]


INJECTIONS = [
    "1; DROP TABLE sdi_data.landsd_buildings; --",
    "' OR '1'='1",
    '"; DROP TABLE sdi_data.landsd_buildings; --',
    "1) OR (1=1",
]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_sql_injection_is_harmless(layer: Conn, server: Server, attack: str) -> None:
    names = [
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "sortby",
        "properties",
        "filter",
        "filter-lang",
        "filter-crs",
        "version",
        "after",
        "resulttype",
        "NAME_EN",
        "FLOORS",
    ]
    for name in names:
        response = get(items_url(server), **{name: attack})
        if response.status_code == 200:
            assert response.json()["numberReturned"] == 0, (name, response.text)
        else:
            assert_ogc_error(response, 400)
    assert_ogc_error(get(f"{items_url(server)}/{attack}"), 404)
    assert get(f"{items_url(server)}/1", version=attack).status_code == 400
    count = layer.execute("SELECT count(*) FROM sdi_data.landsd_buildings").fetchone()
    assert count == (25,)
    assert items(server)["numberMatched"] == 25


def test_whole_floats_keep_their_decimal_point(db: Conn, server: Server) -> None:
    """GDAL types a column by its first values: 120.0 must not read as 120."""
    create_layer(db, SLUG)
    feats = buildings(range(2))
    feats[0].props["HEIGHT_M"] = 120.0
    feats[1].props["HEIGHT_M"] = -3e20
    add_version(db, SLUG, feats)
    text = get(items_url(server)).text
    assert '"HEIGHT_M":120.0,' in text
    assert '"FLOORS":1,' in text  # integers stay integers
    heights = [f["properties"]["HEIGHT_M"] for f in items(server)["features"]]
    assert heights == [120.0, -3e20]
    fid = items(server)["features"][0]["id"]
    assert '"HEIGHT_M":120.0,' in get(f"{items_url(server)}/{fid}").text


def test_offsets_seen_before_give_the_same_pages(layer: Conn, server: Server) -> None:
    """Offsets are remembered as row ids per version and filter: same pages."""
    for params in (
        {},
        {"bbox": "114.149,22.0,114.1725,23.0"},
        {"filter": "FLOORS > 4"},
    ):
        fresh = [
            [f["id"] for f in items(server, limit=4, offset=o, **params)["features"]]
            for o in (9, 5, 13, 1)
        ]
        again = [
            [f["id"] for f in items(server, limit=4, offset=o, **params)["features"]]
            for o in (9, 5, 13, 1)
        ]
        assert fresh == again
        everything = [f["id"] for f in items(server, limit=100, **params)["features"]]
        assert fresh == [everything[o : o + 4] for o in (9, 5, 13, 1)]
        # pages after a remembered one (its next offset) too
        assert [
            f["id"] for f in items(server, limit=3, offset=17, **params)["features"]
        ] == (everything[17:20])
