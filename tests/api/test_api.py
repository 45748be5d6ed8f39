"""The OGC API over real HTTP: collections, items, paging, errors, live publication."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from pyproj import Transformer

from sdi import registry
from tests.api.conftest import Server
from tests.api.layerdata import (
    Conn,
    add_version,
    buildings,
    buildings_layer,
    create_layer,
)

SLUG = "landsd_buildings"
EPSG_2326 = "http://www.opengis.net/def/crs/EPSG/0/2326"


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, timeout=30)


def items(server: Server, **params: Any) -> dict[str, Any]:
    response = get(f"{server.url}/collections/{SLUG}/items", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(check: Callable[[], bool], seconds: float = 2.0) -> float:
    """Poll ``check`` until true; returns the time it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time limit"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


def assert_ogc_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["description"]


def test_landing_page_and_conformance(layer: Conn, server: Server) -> None:
    landing = get(server.url, f="json").json()
    hrefs = {link["rel"]: link["href"] for link in landing["links"]}
    assert hrefs["data"] == f"{server.url}/collections"
    assert hrefs["service-desc"] == f"{server.url}/openapi"
    assert landing["title"] == "Common Spatial Data Infrastructure"
    assert get(server.url, f="json", lang="zh-HK").json()["title"] == "空間數據共享平台"
    conformance = get(f"{server.url}/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    html = get(server.url, f="html")
    assert html.status_code == 200 and "text/html" in html.headers["Content-Type"]
    assert get(f"{server.url}/static/css/default.css").status_code == 200


def test_collections_list_only_published_public_layers(
    layer: Conn, server: Server
) -> None:
    create_layer(layer, "landsd_draft", title_en="Draft")
    add_version(layer, "landsd_draft", buildings(range(3)), publish=False)
    create_layer(layer, "landsd_secret", title_en="Secret", visibility="restricted")
    add_version(layer, "landsd_secret", buildings(range(3)))
    body = get(f"{server.url}/collections", f="json").json()
    assert [c["id"] for c in body["collections"]] == [SLUG, "catalog"]
    collection = get(f"{server.url}/collections/{SLUG}").json()
    assert collection["title"] == "Buildings"
    assert collection["itemType"] == "feature"
    assert EPSG_2326 in collection["crs"]
    assert any(
        link["rel"] == "license" and "csdi" in link["href"]
        for link in collection["links"]
    )
    zh = get(f"{server.url}/collections/{SLUG}", lang="zh-HK").json()
    assert zh["title"] == "建築物" and "地政總署" in zh["description"]
    for hidden in ("landsd_draft", "landsd_secret"):
        assert_ogc_error(get(f"{server.url}/collections/{hidden}"), 404, "NotFound")
        assert_ogc_error(
            get(f"{server.url}/collections/{hidden}/items"), 404, "NotFound"
        )


def test_items_counts_and_chinese_attributes(layer: Conn, server: Server) -> None:
    response = get(f"{server.url}/collections/{SLUG}/items", f="json")
    assert response.headers["Content-Type"].startswith("application/geo+json") or (
        response.headers["Content-Type"].startswith("application/json")
    )
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == 25 and body["numberReturned"] == 10
    names = [f["properties"]["NAME_TC"] for f in body["features"]]
    assert names[:3] == ["大廈0號", "大廈1號", "大廈2號"]
    hits = items(server, resulttype="hits")
    assert hits["numberMatched"] == 25 and hits["features"] == []


def test_next_links_walk_the_collection(layer: Conn, server: Server) -> None:
    url: str | None = f"{server.url}/collections/{SLUG}/items?limit=7"
    seen: list[int] = []
    pages = 0
    while url:
        body = requests.get(url, timeout=30).json()
        assert body["numberMatched"] == 25
        seen += [f["id"] for f in body["features"]]
        pages += 1
        url = next((lk["href"] for lk in body["links"] if lk["rel"] == "next"), None)
        assert pages < 10
    assert pages == 4 and len(seen) == 25 and len(set(seen)) == 25


def test_bbox_and_property_filters(layer: Conn, server: Server) -> None:
    body = items(server, bbox="114.149,22.0,114.1525,23.0", limit=100)
    assert sorted(f["properties"]["BLDG_ID"] for f in body["features"]) == [
        "B0000",
        "B0005",
        "B0010",
        "B0015",
        "B0020",
    ]
    one = items(server, NAME_TC="大廈7號")
    assert one["numberMatched"] == 1 and one["features"][0]["properties"]["FLOORS"] == 8
    selected = items(server, properties="NAME_EN", skipGeometry="true", limit=1)
    assert selected["features"][0]["properties"] == {"NAME_EN": "Building 0"}
    assert selected["features"][0]["geometry"] is None
    ordered = items(server, sortby="-HEIGHT_M", limit=2)
    assert ordered["features"][0]["properties"]["BLDG_ID"] == "B0024"


def test_feature_by_id(layer: Conn, server: Server) -> None:
    fid = items(server, limit=1)["features"][0]["id"]
    response = get(f"{server.url}/collections/{SLUG}/items/{fid}")
    assert response.status_code == 200
    feature = response.json()
    assert feature["id"] == fid and feature["properties"]["NAME_TC"] == "大廈0號"
    assert_ogc_error(
        get(f"{server.url}/collections/{SLUG}/items/999999"), 404, "NotFound"
    )
    assert_ogc_error(get(f"{server.url}/collections/{SLUG}/items/abc"), 404, "NotFound")
    assert_ogc_error(get(f"{server.url}/collections/nope/items/1"), 404, "NotFound")
    assert_ogc_error(get(f"{server.url}/collections/nope"), 404, "NotFound")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": "0"},
        {"limit": "-5"},
        {"offset": "-1"},
        {"offset": "x"},
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "114,23,115,22"},
        {"sortby": "nope"},
        {"properties": "nope"},
        {"FLOORS": "eight"},
        {"crs": "http://www.opengis.net/def/crs/EPSG/0/9999999"},
        {"filter": "FLOORS >"},
        {"filter": "NOPE = 3"},
        {"f": "xml"},
    ],
)
def test_bad_parameters_are_400_ogc_exceptions(
    layer: Conn, server: Server, params: dict[str, str]
) -> None:
    response = get(f"{server.url}/collections/{SLUG}/items", **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] and body["description"]


def test_limit_is_capped_by_the_settings(layer: Conn, server: Server) -> None:
    assert items(server, limit=100_000)["numberReturned"] == 25


def test_unknown_path_and_method_are_ogc_errors(layer: Conn, server: Server) -> None:
    assert_ogc_error(get(f"{server.url}/nowhere"), 404, "NotFound")
    response = requests.delete(f"{server.url}/collections/{SLUG}/items", timeout=30)
    assert_ogc_error(response, 405, "OperationNotSupported")


@pytest.mark.parametrize(
    "path",
    [
        "/collections",
        "/collections/{slug}",
        "/collections/{slug}/items",
        "/collections/{slug}/items/{fid}",
        "/collections/{slug}/queryables",
        "/collections/{slug}/schema",
        "/openapi",
        "/conformance",
        "/TileMatrixSets",
        "/processes",
    ],
)
def test_html_pages(layer: Conn, server: Server, path: str) -> None:
    fid = items(server, limit=1)["features"][0]["id"]
    url = server.url + path.format(slug=SLUG, fid=fid)
    for lang in ("en-US", "zh-HK"):
        response = get(url, f="html", lang=lang)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/html")


def test_queryables_and_openapi(layer: Conn, server: Server) -> None:
    queryables = get(f"{server.url}/collections/{SLUG}/queryables").json()
    assert queryables["properties"]["FLOORS"]["type"] == "integer"
    assert "NAME_TC" in queryables["properties"]
    oas = get(f"{server.url}/openapi", f="json").json()
    assert f"/collections/{SLUG}/items" in oas["paths"]
    assert oas["servers"][0]["url"] == server.url


def test_output_crs_hk1980_grid(layer: Conn, server: Server) -> None:
    response = get(f"{server.url}/collections/{SLUG}/items", crs=EPSG_2326, limit=100)
    assert response.status_code == 200
    assert response.headers["Content-Crs"] == f"<{EPSG_2326}>"
    native = {f["id"]: f for f in items(server, limit=100)["features"]}
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326")
    for feature in response.json()["features"]:
        lon, lat = native[feature["id"]]["geometry"]["coordinates"]
        northing, easting = to_grid.transform(lat, lon)
        got_n, got_e = feature["geometry"]["coordinates"]
        assert abs(got_n - northing) < 0.05 and abs(got_e - easting) < 0.05


def test_publish_and_rollback_reach_the_api_without_restart(
    layer: Conn, server: Server
) -> None:
    v1_ids = {f["id"] for f in items(server, limit=100)["features"]}
    add_version(layer, SLUG, buildings(range(5, 30), renamed=frozenset({5})))
    took = wait_for(lambda: items(server, BLDG_ID="B0029")["numberMatched"] == 1)
    assert took < 2.0
    v2 = items(server, limit=100)
    assert v2["numberMatched"] == 25 and {f["id"] for f in v2["features"]} != v1_ids
    renamed = items(server, BLDG_ID="B0005")["features"][0]["properties"]["NAME_EN"]
    assert renamed == "Building 5 (new)"

    registry.publish(layer, SLUG, 1)  # rollback
    wait_for(lambda: items(server, BLDG_ID="B0029")["numberMatched"] == 0)
    assert {f["id"] for f in items(server, limit=100)["features"]} == v1_ids

    registry.unpublish(layer, SLUG)
    wait_for(lambda: get(f"{server.url}/collections/{SLUG}").status_code == 404)


def test_every_worker_thread_sees_the_new_version(layer: Conn, server: Server) -> None:
    """Concurrent requests during a publish never fail and converge on v2."""
    import concurrent.futures

    add_version(layer, SLUG, buildings(range(40)), publish=False)
    registry.publish(layer, SLUG, 2)
    started = time.monotonic()

    def count() -> int:
        return int(items(server, limit=1)["numberMatched"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while True:
            results = list(pool.map(lambda _: count(), range(16)))
            if set(results) == {40}:
                break
            assert set(results) <= {25, 40}
            assert time.monotonic() - started < 2.0


def test_layer_stored_in_hk1980_grid(db: Conn, server: Server) -> None:
    """SDI_STORAGE_SRID=2326: output in CRS84 by default, bbox in CRS84 or 2326."""
    slug = "td_stops"
    to_wgs84 = Transformer.from_crs("EPSG:2326", "EPSG:4326", always_xy=True)
    create_layer(db, slug, agency="td", title_en="Stops", title_zh="車站", srid=2326)
    stops = buildings(range(6))
    for i, stop in enumerate(stops):
        stop.wkt = f"POINT({833000 + i * 1000} {816000 + i * 500})"
    add_version(db, slug, stops)
    url = f"{server.url}/collections/{slug}/items"
    collection = get(f"{server.url}/collections/{slug}").json()
    assert collection["storageCrs"] == EPSG_2326
    body = get(url, limit=100).json()
    for feature in body["features"]:
        i = int(feature["properties"]["BLDG_ID"][1:])
        lon, lat = to_wgs84.transform(833000 + i * 1000, 816000 + i * 500)
        got_lon, got_lat = feature["geometry"]["coordinates"]
        assert abs(got_lon - lon) < 1e-7 and abs(got_lat - lat) < 1e-7
    grid = get(url, limit=100, crs=EPSG_2326).json()["features"]
    assert grid[1]["geometry"]["coordinates"] == [816500, 834000]  # northing first
    # stops 2 and 3, by a CRS84 box and by the same box in the grid (N, E order)
    lon0, lat0 = to_wgs84.transform(834500, 816800)
    lon1, lat1 = to_wgs84.transform(836500, 817800)
    wgs = get(url, bbox=f"{lon0},{lat0},{lon1},{lat1}").json()
    assert sorted(f["properties"]["BLDG_ID"] for f in wgs["features"]) == [
        "B0002",
        "B0003",
    ]
    in_grid = get(url, bbox="816800,834500,817800,836500", **{"bbox-crs": EPSG_2326})
    assert in_grid.status_code == 200, in_grid.text
    assert sorted(f["properties"]["BLDG_ID"] for f in in_grid.json()["features"]) == [
        "B0002",
        "B0003",
    ]


def test_responses_carry_length_and_cors(layer: Conn, server: Server) -> None:
    response = get(f"{server.url}/collections/{SLUG}/items", limit=2)
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    missing = get(f"{server.url}/collections/nope")
    assert missing.headers["Access-Control-Allow-Origin"] == "*"


def test_angle_brackets_in_attribute_values_survive(db: Conn, server: Server) -> None:
    create_layer(db, SLUG)
    feat = buildings(range(1))[0]
    feat.props["NAME_EN"] = "Height > 10 m <approx>"
    add_version(db, SLUG, [feat])
    body = items(server)
    assert body["features"][0]["properties"]["NAME_EN"] == "Height > 10 m <approx>"
