"""OGC API - Tiles for vector layers over real HTTP: tile sets, metadata, MVT tiles."""

from __future__ import annotations

import time
from typing import Any

import mapbox_vector_tile
import pytest
import requests

from sdi import registry
from sdi.registry import apikeys
from tests.api.conftest import Server
from tests.api.layerdata import Conn, Feat, add_version, buildings, create_layer
from tests.providers.test_mvt import CENTRAL, FIELDS, random_feats, tile_of

SLUG = "landsd_buildings"
MVT = "application/vnd.mapbox-vector-tile"
TMS = "WebMercatorQuad"


def get(url: str, key: str | None = None, **params: Any) -> requests.Response:
    headers = {"X-API-Key": key} if key else {}
    return requests.get(url, params=params, headers=headers, timeout=60)


def tile_url(server: Server, z: int, y: int, x: int, slug: str = SLUG) -> str:
    return f"{server.url}/collections/{slug}/tiles/{TMS}/{z}/{y}/{x}"


def decode(response: requests.Response, name: str = SLUG) -> dict[int, dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == MVT
    tile = mapbox_vector_tile.decode(response.content)
    return {f["id"]: f for f in tile[name]["features"]}


def assert_ogc_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["description"]
    assert "immutable" not in response.headers.get("Cache-Control", "")


@pytest.fixture
def layer(db: Conn) -> Conn:
    """Buildings around Central, version 1 and a renamed version 2 (published)."""
    create_layer(db, SLUG, fields=FIELDS)
    feats = random_feats(400)
    add_version(db, SLUG, feats)
    renamed = [
        Feat(f.key, {**f.props, "NAME_EN": f"{f.props['NAME_EN']} (new)"}, f.wkt)
        for f in feats
    ]
    add_version(db, SLUG, renamed)
    return db


def test_tile_sets_and_metadata(layer: Conn, server: Server) -> None:
    base = f"{server.url}/collections/{SLUG}/tiles"
    response = get(base)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["dataType"] for t in body["tilesets"]] == ["vector"]
    tileset = body["tilesets"][0]
    assert tileset["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    assert tileset["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    links = {link["rel"]: link for link in tileset["links"]}
    assert links["item"]["type"] == MVT and links["item"]["templated"]
    assert links["item"]["href"].endswith(
        f"/{SLUG}/tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt"
    )
    scheme = get(links["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"])
    assert scheme.status_code == 200 and scheme.json()["id"] == TMS
    # The metadata behind the self link.
    meta = get(links["self"]["href"])
    assert meta.status_code == 200, meta.text
    m = meta.json()
    assert m["dataType"] == "vector" and m["version"] == "2"
    assert m["tileMatrixSetURI"] == tileset["tileMatrixSetURI"]
    assert "CSDI" in m["license"] and "Lands Department" in m["attribution"]
    assert "Contains data from the CSDI Portal" in m["attribution"]
    assert any(link["rel"] == "license" for link in m["links"])
    (lyr,) = m["layers"]
    assert lyr["id"] == SLUG and lyr["geometryDimension"] in (1, 2)
    assert lyr["minTileMatrix"] == "0" and lyr["maxTileMatrix"] == "16"
    props = lyr["propertiesSchema"]["properties"]
    assert props["FLOORS"] == {"type": "integer"}
    assert props["HEIGHT_M"] == {"type": "number"}
    assert props["NAME_TC"] == {"type": "string"}
    assert lyr["defaultProperties"] == ["NAME_EN"]
    west, south = m["boundingBox"]["lowerLeft"]
    east, north = m["boundingBox"]["upperRight"]
    assert west < CENTRAL[0] < east and south < CENTRAL[1] < north
    limits = {lim["tileMatrix"]: lim for lim in m["tileMatrixSetLimits"]}
    assert list(limits) == [str(z) for z in range(25)]  # every level served
    assert limits["0"]["maxTileRow"] == limits["0"]["maxTileCol"] == 0
    _, y, x = tile_of(*CENTRAL, 14)
    assert limits["14"]["minTileRow"] <= y <= limits["14"]["maxTileRow"]
    assert limits["14"]["minTileCol"] <= x <= limits["14"]["maxTileCol"]
    # An explicit version is carried into the links.
    old = get(f"{base}/{TMS}", version=1).json()
    assert old["version"] == "1"
    item = next(link for link in old["links"] if link["rel"] == "item")
    assert item["href"].endswith("?f=mvt&version=1")


def test_tiles_carry_ids_and_chosen_attributes(layer: Conn, server: Server) -> None:
    z, y, x = tile_of(*CENTRAL, 16)
    default = decode(get(tile_url(server, z, y, x)))
    assert len(default) > 5
    # The title attribute only, by default; ids are the feature ids.
    assert {k for f in default.values() for k in f["properties"]} == {"NAME_EN"}
    for fid, feature in list(default.items())[:5]:
        item = get(f"{server.url}/collections/{SLUG}/items/{fid}", f="json").json()
        assert feature["properties"]["NAME_EN"] == item["properties"]["NAME_EN"]
        assert item["properties"]["NAME_EN"].endswith("(new)")
    every = decode(get(tile_url(server, z, y, x), properties="*"))
    assert set(every) == set(default)
    assert any(
        f["properties"].get("NAME_TC", "").startswith("大廈") for f in every.values()
    )
    two = decode(get(tile_url(server, z, y, x), properties="FLOORS,NAME_TC", f="mvt"))
    assert {k for f in two.values() for k in f["properties"]} == {"FLOORS", "NAME_TC"}
    none = decode(get(tile_url(server, z, y, x), properties=""))
    assert set(none) == set(default) and not any(f["properties"] for f in none.values())


def test_bad_requests(layer: Conn, server: Server) -> None:
    z, y, x = tile_of(*CENTRAL, 14)
    url = tile_url(server, z, y, x)
    assert_ogc_error(get(url, properties="NOPE"), 400, "InvalidParameterValue")
    assert_ogc_error(get(url, f="png"), 400, "InvalidParameterValue")
    assert_ogc_error(get(url, version="two"), 400, "InvalidParameterValue")
    assert_ogc_error(get(url, version=3), 404, "NotFound")
    assert_ogc_error(get(url, version=0), 404, "NotFound")
    assert_ogc_error(get(tile_url(server, 25, 0, 0)), 404, "NotFound")
    assert_ogc_error(get(tile_url(server, 3, 8, 0)), 404, "NotFound")
    assert_ogc_error(get(tile_url(server, 3, 0, 8)), 404, "NotFound")
    bad = f"{server.url}/collections/{SLUG}/tiles/{TMS}/a/0/0"
    assert_ogc_error(get(bad), 400, "InvalidParameterValue")
    other = f"{server.url}/collections/{SLUG}/tiles/WorldCRS84Quad/0/0/0"
    assert_ogc_error(get(other), 404, "NotFound")
    assert_ogc_error(get(f"{server.url}/collections/nope/tiles"), 404, "NotFound")
    assert_ogc_error(get(tile_url(server, 0, 0, 0, "nope")), 404, "NotFound")
    meta = f"{server.url}/collections/{SLUG}/tiles/{TMS}"
    assert_ogc_error(get(meta, version=9), 404, "NotFound")
    assert_ogc_error(get(meta, f="xml"), 400, "InvalidParameterValue")


def test_empty_tiles_are_204_with_cache_headers(layer: Conn, server: Server) -> None:
    for z, y, x in [tile_of(-0.1, 51.5, 14), tile_of(114.5, 22.0, 16)]:
        response = get(tile_url(server, z, y, x))
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.headers["ETag"].startswith('"')
        old = get(tile_url(server, z, y, x), version=1)
        assert old.status_code == 204
        assert old.headers["Cache-Control"] == "public, max-age=86400"


def test_etags_and_caching(layer: Conn, server: Server) -> None:
    z, y, x = tile_of(*CENTRAL, 15)
    url = tile_url(server, z, y, x)
    first = get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=300"
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    # Other attributes, other tile, other tag.
    assert get(url, properties="*").headers["ETag"] != etag
    # An explicit version: cached a day (SDI_VERSION_MAX_AGE), and its tag
    # survives publications.
    v1 = get(url, version=1)
    assert v1.status_code == 200
    assert v1.headers["Cache-Control"] == "public, max-age=86400"
    assert v1.headers["ETag"] != etag
    names = {f["properties"]["NAME_EN"] for f in decode(v1).values()}
    assert names and not any(n.endswith("(new)") for n in names)
    registry.publish(layer, SLUG, 1)  # roll back: the default tile changes

    def rolled_back() -> bool:
        return get(url).headers["ETag"] != etag

    deadline = time.monotonic() + 5
    while not rolled_back():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert get(url, version=1).headers["ETag"] == v1.headers["ETag"]
    assert (
        requests.get(url, headers={"If-None-Match": etag}, timeout=30).status_code
        == 200
    )


def test_restricted_layer_tiles_need_a_key(db: Conn, server: Server) -> None:
    secret = "landsd_secret_sites"
    create_layer(db, secret, visibility="restricted")
    add_version(db, secret, buildings(range(30)))
    agency = registry.get_agency(db, "landsd")
    admin = registry.create_user(
        db, "tiles@landsd.test", "a long enough password", "agency_admin", agency=agency
    )
    _, key = apikeys.create_key(db, admin, agency.id, "vendor", [secret])
    z, y, x = tile_of(114.16, 22.29, 12)
    for path in ("tiles", f"tiles/{TMS}", f"tiles/{TMS}/{z}/{y}/{x}"):
        response = get(f"{server.url}/collections/{secret}/{path}")
        assert_ogc_error(response, 404, "NotFound")
    response = get(tile_url(server, z, y, x, secret), key)
    assert len(decode(response, secret)) > 0
    cache = response.headers["Cache-Control"]
    assert "private" in cache and "public" not in cache
    assert (
        f"/collections/{secret}/tiles"
        not in get(f"{server.url}/openapi", f="json").text
    )


def test_openapi_describes_the_tile_routes(layer: Conn, server: Server) -> None:
    paths = get(f"{server.url}/openapi", f="json").json()["paths"]
    base = f"/collections/{SLUG}/tiles"
    assert base in paths and f"{base}/{{tileMatrixSetId}}" in paths
    tile = paths[f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"]
    params = {p["name"]: p for p in tile["get"]["parameters"]}
    assert {"tileMatrix", "tileRow", "tileCol", "version", "properties"} <= set(params)
    assert params["version"]["schema"]["maximum"] == 2
    assert params["version"]["schema"]["default"] == 2
    assert MVT in tile["get"]["responses"]["200"]["content"]


def test_default_attribute_of_a_version_is_its_own(db: Conn, server: Server) -> None:
    """A later version naming its title attribute differently leaves old tiles be."""
    create_layer(db, SLUG, fields=[("NAME_EN", "text"), ("LABEL_NAME", "text")])
    feats = random_feats(50)
    add_version(db, SLUG, [Feat(f.key, {"NAME_EN": f.key}, f.wkt) for f in feats])
    add_version(db, SLUG, [Feat(f.key, {"LABEL_NAME": f.key}, f.wkt) for f in feats])
    z, y, x = tile_of(*CENTRAL, 13)
    new = decode(get(tile_url(server, z, y, x)))
    old = decode(get(tile_url(server, z, y, x), version=1))
    assert {k for f in new.values() for k in f["properties"]} == {"LABEL_NAME"}
    assert {k for f in old.values() for k in f["properties"]} == {"NAME_EN"}
    meta = get(f"{server.url}/collections/{SLUG}/tiles/{TMS}", version=1).json()
    assert meta["layers"][0]["defaultProperties"] == ["NAME_EN"]
