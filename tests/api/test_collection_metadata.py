"""Collection documents: licence, attribution, storage CRS, versions, tiles links."""

from __future__ import annotations

import requests

from sdi import registry
from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer

SLUG = "landsd_buildings"
HK1980 = "http://www.opengis.net/def/crs/EPSG/0/2326"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def get(url: str, **params: str) -> requests.Response:
    response = requests.get(url, params=params, timeout=30)
    assert response.status_code == 200, (url, response.text[:300])
    return response


def test_collection_carries_licence_attribution_crs_and_versions(
    db: Conn, server: Server
) -> None:
    buildings_layer(db, SLUG, 5)
    add_version(db, SLUG, buildings(range(8)))
    add_version(db, SLUG, buildings(range(9)), publish=False)  # under review
    licence = registry.get_licence(db, "hk-csdi")
    agency = registry.get_agency(db, "landsd")

    body = get(f"{server.url}/collections/{SLUG}", f="json").json()
    licences = [link for link in body["links"] if link["rel"] == "license"]
    assert [link["href"] for link in licences] == [licence.url]
    assert agency.name_en in body["attribution"]
    if licence.attribution_en:
        assert licence.attribution_en in body["attribution"]
    assert body["storageCrs"] == CRS84
    assert {CRS84, HK1980} <= set(body["crs"])
    # Versions 1..published are queryable; the one under review is not listed.
    assert body["publishedVersion"] == 2
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert [v["numberOfFeatures"] for v in body["versions"]] == [5, 8]
    rels = {link["rel"]: link["href"] for link in body["links"]}
    tiles = rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]
    assert tiles.endswith(f"/collections/{SLUG}/tiles")
    assert get(tiles, f="json").json()["tilesets"]
    history = get(rels["version-history"], f="json").json()
    assert sorted(v["version"] for v in history["versions"]) == [1, 2]

    # Chinese: the attribution follows the language.
    zh = get(f"{server.url}/collections/{SLUG}", f="json", lang="zh-HK").json()
    assert (agency.name_zh or agency.name_en) in zh["attribution"]

    # The list carries the same facts per collection.
    listed = get(f"{server.url}/collections", f="json").json()["collections"]
    mine = next(c for c in listed if c["id"] == SLUG)
    assert mine["attribution"] == body["attribution"]
    assert mine["publishedVersion"] == 2


def test_licence_link_on_every_page(db: Conn, server: Server) -> None:
    buildings_layer(db, SLUG, 5)
    url = registry.get_licence(db, "hk-csdi").url
    assert url
    for path in ("", "/items", "/items?limit=2"):
        page = get(f"{server.url}/collections/{SLUG}{path}", f="html")
        assert url in page.text, path
    items = get(f"{server.url}/collections/{SLUG}/items", f="json").json()
    assert url in {link["href"] for link in items["links"] if link["rel"] == "license"}
    fid = items["features"][0]["id"]
    one = get(f"{server.url}/collections/{SLUG}/items/{fid}", f="json").json()
    assert url in {link["href"] for link in one["links"] if link["rel"] == "license"}
    page = get(f"{server.url}/collections/{SLUG}/items/{fid}", f="html")
    assert url in page.text
    # Shown on the page, not only in the head.
    for path in ("/items", f"/items/{fid}"):
        body = get(f"{server.url}/collections/{SLUG}{path}", f="html").text
        shown = body.split("<body", 1)[1]
        assert f'<a rel="license" href="{url}"' in shown, path


def test_each_feature_links_to_itself(db: Conn, server: Server) -> None:
    # The links of the feature-by-id route are cached per layer version and
    # language with the id filled in per request.
    buildings_layer(db, SLUG, 5)
    items = get(f"{server.url}/collections/{SLUG}/items", f="json").json()
    for feature in items["features"]:
        fid = feature["id"]
        for _ in range(2):
            one = get(f"{server.url}/collections/{SLUG}/items/{fid}", f="json").json()
            assert one["id"] == fid
            own = [link["href"] for link in one["links"] if link["rel"] == "self"]
            assert own == [f"{server.url}/collections/{SLUG}/items/{fid}?f=json"]
