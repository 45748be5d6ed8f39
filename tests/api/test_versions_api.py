"""Versions over HTTP: ?version=N, /versions, /changes, ETags and caching."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from sdi import registry
from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, building, buildings, buildings_layer

SLUG = "landsd_buildings"


def get(
    url: str, headers: dict[str, str] | None = None, **params: Any
) -> requests.Response:
    return requests.get(url, params=params, headers=headers, timeout=30)


def base(server: Server) -> str:
    return f"{server.url}/collections/{SLUG}"


def body_of(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["BLDG_ID"]: f for f in body["features"]}


def link(body: dict[str, Any], rel: str) -> str | None:
    return next((lk["href"] for lk in body["links"] if lk["rel"] == rel), None)


def wait_for_version(server: Server, version: int) -> None:
    deadline = time.monotonic() + 3
    while body_of(get(f"{base(server)}/versions"))["publishedVersion"] != version:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture
def versions(db: Conn) -> Conn:
    """v1: B0000-B0024; v2: 0-4 removed, 5 renamed, 25-27 added; v3: 11 renamed."""
    buildings_layer(db, SLUG, 25)
    add_version(db, SLUG, buildings(range(5, 28), renamed=frozenset({5})))
    add_version(db, SLUG, buildings(range(5, 28), renamed=frozenset({5, 11})))
    return db


def test_version_parameter(versions: Conn, server: Server) -> None:
    items = f"{base(server)}/items"
    current = body_of(get(items, limit=100))
    v1 = body_of(get(items, limit=100, version=1))
    v2 = body_of(get(items, limit=100, version=2))
    v3 = body_of(get(items, limit=100, version=3))
    assert current["features"] == v3["features"]
    assert (v1["numberMatched"], v2["numberMatched"], v3["numberMatched"]) == (
        25,
        23,
        23,
    )
    assert "B0000" in by_key(v1) and "B0000" not in by_key(v2)
    assert by_key(v1)["B0005"]["properties"]["NAME_EN"] == "Building 5"
    assert by_key(v2)["B0005"]["properties"]["NAME_EN"] == "Building 5 (new)"
    assert by_key(v2)["B0011"]["properties"]["NAME_EN"] == "Building 11"
    assert by_key(v3)["B0011"]["properties"]["NAME_EN"] == "Building 11 (new)"
    assert by_key(v1)["B0010"]["id"] == by_key(v3)["B0010"]["id"]
    filtered = body_of(get(items, version=1, BLDG_ID="B0003"))
    assert filtered["numberMatched"] == 1
    for bad in ("4", "0", "-1"):
        response = get(items, version=bad)
        assert response.status_code == 404, response.text
        assert "versions 1 to 3" in response.json()["description"]
    assert get(items, version="v2").status_code == 400
    assert get(items, version="2", f="jsonld").status_code == 400


def test_paging_an_old_version_and_across_a_publication(
    versions: Conn, server: Server
) -> None:
    first = body_of(get(f"{base(server)}/items", limit=10))
    next_url = link(first, "next")
    assert next_url is not None and "version=3" in next_url
    add_version(versions, SLUG, buildings(range(100, 130)))  # v4 published
    wait_for_version(server, 4)
    seen = [f["id"] for f in first["features"]]
    while next_url:
        page = body_of(requests.get(next_url, timeout=30))
        seen += [f["id"] for f in page["features"]]
        next_url = link(page, "next")
    v3 = body_of(get(f"{base(server)}/items", limit=100, version=3))
    assert seen == [f["id"] for f in v3["features"]]


def test_feature_by_id_in_versions(versions: Conn, server: Server) -> None:
    old = by_key(body_of(get(f"{base(server)}/items", limit=100, version=1)))["B0000"]
    url = f"{base(server)}/items/{old['id']}"
    missing = get(url)
    assert missing.status_code == 404
    assert "version=1" in missing.json()["description"]
    found = body_of(get(url, version=1))
    assert found["properties"]["BLDG_ID"] == "B0000"
    assert any(
        "version=1" in lk["href"] for lk in found["links"] if lk["rel"] == "self"
    )
    assert get(url, version=9).status_code == 404


def test_versions_document(versions: Conn, server: Server) -> None:
    response = get(f"{base(server)}/versions")
    body = body_of(response)
    assert body["publishedVersion"] == 3
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    assert [v["numberOfFeatures"] for v in body["versions"]] == [23, 23, 25]
    assert [v["published"] for v in body["versions"]] == [True, False, False]
    assert all(v["created"] for v in body["versions"])
    v2 = body["versions"][1]
    hrefs = {lk["rel"]: lk["href"] for lk in v2["links"]}
    assert hrefs["items"].endswith("/items?version=2")
    assert hrefs["changes"].endswith("/changes?from=1&to=2")
    assert body_of(requests.get(hrefs["items"], timeout=30))["numberMatched"] == 23
    assert any(lk["rel"] == "license" for lk in body["links"])
    assert get(f"{server.url}/collections/nope/versions").status_code == 404


def test_changes_between_versions(versions: Conn, server: Server) -> None:
    v1 = by_key(body_of(get(f"{base(server)}/items", limit=100, version=1)))
    v2 = by_key(body_of(get(f"{base(server)}/items", limit=100, version=2)))
    body = body_of(get(f"{base(server)}/changes", **{"from": 1, "to": 2}))
    assert body["type"] == "FeatureCollection"
    kinds = {f["properties"]["BLDG_ID"]: f["change"] for f in body["features"]}
    assert kinds == {
        **{f"B{i:04d}": "removed" for i in range(5)},
        "B0005": "changed",
        **{f"B{i:04d}": "added" for i in (25, 26, 27)},
    }
    assert body["numberMatched"] == 9 == body["numberReturned"]
    assert body["changes"] == {"added": 3, "changed": 1, "removed": 5}
    for feature in body["features"]:
        key = feature["properties"]["BLDG_ID"]
        state = v1[key] if feature["change"] == "removed" else v2[key]
        assert feature["id"] == state["id"]
        assert feature["properties"] == state["properties"]
        assert feature["geometry"] == state["geometry"]
    default = body_of(get(f"{base(server)}/changes"))  # published vs the one before
    assert [(f["properties"]["BLDG_ID"], f["change"]) for f in default["features"]] == [
        ("B0011", "changed")
    ]
    back = body_of(get(f"{base(server)}/changes", **{"from": 2, "to": 1}))
    assert {f["properties"]["BLDG_ID"]: f["change"] for f in back["features"]} == {
        **{f"B{i:04d}": "added" for i in range(5)},
        "B0005": "changed",
        **{f"B{i:04d}": "removed" for i in (25, 26, 27)},
    }
    everything = body_of(get(f"{base(server)}/changes", to=1, limit=100))
    assert everything["numberMatched"] == 25
    assert {f["change"] for f in everything["features"]} == {"added"}
    same = body_of(get(f"{base(server)}/changes", **{"from": 2, "to": 2}))
    assert same["features"] == [] and same["numberMatched"] == 0
    for bad, status in (({"from": 9}, 404), ({"to": "x"}, 400), ({"limit": 0}, 400)):
        assert get(f"{base(server)}/changes", **bad).status_code == status


def test_changes_are_paged(versions: Conn, server: Server) -> None:
    url: str | None = f"{base(server)}/changes?from=1&to=2&limit=4"
    seen: list[int] = []
    pages = 0
    while url:
        page = body_of(requests.get(url, timeout=30))
        assert page["numberMatched"] == 9
        seen += [f["id"] for f in page["features"]]
        url = link(page, "next")
        pages += 1
    assert pages == 3 and len(seen) == 9 and len(set(seen)) == 9


def test_etags_and_caching(versions: Conn, server: Server) -> None:
    items = f"{base(server)}/items"
    current = get(items, limit=5)
    etag = current.headers["ETag"]
    assert current.headers["Cache-Control"] == "public, max-age=60"
    again = get(items, headers={"If-None-Match": etag}, limit=5)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert get(items, headers={"If-None-Match": etag}, limit=6).status_code == 200

    pinned = get(items, limit=5, version=2)
    strong = pinned.headers["ETag"]
    assert not strong.startswith("W/")
    assert pinned.headers["Cache-Control"] == "public, max-age=86400"
    assert get(items, limit=5, version=2).content == pinned.content  # byte-stable
    assert (
        get(items, headers={"If-None-Match": strong}, limit=5, version=2).status_code
        == 304
    )

    fid = current.json()["features"][0]["id"]
    one = get(f"{items}/{fid}")
    assert one.headers["Cache-Control"] == "public, max-age=60"
    assert (
        get(
            f"{items}/{fid}", headers={"If-None-Match": one.headers["ETag"]}
        ).status_code
        == 304
    )
    one_pinned = get(f"{items}/{fid}", version=3)
    assert one_pinned.headers["Cache-Control"] == "public, max-age=86400"

    changes = get(f"{base(server)}/changes", **{"from": 1, "to": 2})
    assert changes.headers["Cache-Control"] == "public, max-age=86400"
    assert (
        get(
            f"{base(server)}/changes",
            headers={"If-None-Match": changes.headers["ETag"]},
            **{"from": 1, "to": 2},
        ).status_code
        == 304
    )

    # a publication changes the current responses' ETag
    registry.publish(versions, SLUG, 2)
    wait_for_version(server, 2)
    moved = get(items, headers={"If-None-Match": etag}, limit=5)
    assert moved.status_code == 200 and moved.headers["ETag"] != etag


def test_a_feature_that_comes_back(db: Conn, server: Server) -> None:
    """A feature removed in v2 and back in v3 is removed, then added."""
    buildings_layer(db, SLUG, 3)
    add_version(db, SLUG, [building(0), building(1)])
    add_version(db, SLUG, [building(0), building(1), building(2)])
    back = body_of(get(f"{base(server)}/changes", **{"from": 2, "to": 3}))
    assert [(f["properties"]["BLDG_ID"], f["change"]) for f in back["features"]] == [
        ("B0002", "added")
    ]
    none = body_of(get(f"{base(server)}/changes", **{"from": 1, "to": 3}))
    assert none["features"] == [] and none["changes"] == {
        "added": 0,
        "changed": 0,
        "removed": 0,
    }


def test_openapi_declares_versions_and_changes(versions: Conn, server: Server) -> None:
    from sdi.publish import build_config, build_openapi
    from sdi.publish.features_oas import add_feature_paths

    config = build_config(versions, server.settings)
    oas = build_openapi(config)
    add_feature_paths(oas, config)
    add_feature_paths(oas, config)  # idempotent
    paths = oas["paths"]
    items = paths[f"/collections/{SLUG}/items"]["get"]["parameters"]
    names = [p.get("name") for p in items]
    assert names.count("version") == 1 and "after" in names and "filter" in names
    version = next(p for p in items if p.get("name") == "version")
    assert version["schema"]["maximum"] == 3 and version["schema"]["default"] == 3
    item = paths[f"/collections/{SLUG}/items/{{featureId}}"]["get"]["parameters"]
    assert "version" in [p.get("name") for p in item]
    assert "get" in paths[f"/collections/{SLUG}/versions"]
    changes = paths[f"/collections/{SLUG}/changes"]["get"]["parameters"]
    refs = [p["$ref"].split("/")[-1] for p in changes if "$ref" in p]
    assert all(ref in oas["components"]["parameters"] for ref in refs)
    assert "catalog" not in " ".join(p for p in paths if p.endswith("/versions"))
