"""Restricted layers on the OGC API: invisible without an API key granted for them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sdi import registry
from sdi.registry import apikeys
from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, buildings, create_layer

SECRET = "landsd_secret_sites"
OTHER = "landsd_other_secret"
PUBLIC = "landsd_buildings"


@dataclass
class Keys:
    """Keys of the landsd admin: one opens SECRET, one opens OTHER only."""

    secret: str
    other: str
    secret_id: int
    admin: registry.User


@pytest.fixture
def keys(db: Conn) -> Keys:
    create_layer(db, PUBLIC)
    add_version(db, PUBLIC, buildings(range(5)))
    for slug in (SECRET, OTHER):
        create_layer(
            db,
            slug,
            visibility="restricted",
            title_en=f"Secret {slug}",
            title_zh="機密",
        )
        add_version(db, slug, buildings(range(7)))
    agency = registry.get_agency(db, "landsd")
    admin = registry.create_user(
        db, "keys@landsd.test", "a long enough password", "agency_admin", agency=agency
    )
    record, secret = apikeys.create_key(db, admin, agency.id, "vendor", [SECRET])
    _, other = apikeys.create_key(db, admin, agency.id, "other vendor", [OTHER])
    return Keys(secret, other, record.id, admin)


def get(url: str, key: str | None = None, **params: Any) -> requests.Response:
    headers = {"X-API-Key": key} if key else {}
    return requests.get(url, params=params, headers=headers, timeout=30)


def collection_ids(server: Server, key: str | None = None) -> set[str]:
    response = get(f"{server.url}/collections", key, f="json")
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["collections"]}


def assert_absent(server: Server, slug: str, key: str | None = None) -> None:
    """Every route of ``slug`` answers 404 and no listing names it."""
    assert slug not in collection_ids(server, key)
    base = f"{server.url}/collections/{slug}"
    for path in ("", "/items", "/items/1", "/queryables", "/tiles", "/versions"):
        response = get(base + path, key, f="json")
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["Content-Type"].startswith("application/json")
    openapi = get(f"{server.url}/openapi", key, f="json")
    assert openapi.status_code == 200
    assert slug not in openapi.text
    catalogue = get(f"{server.url}/collections/catalog/items", key, f="json", limit=50)
    assert catalogue.status_code == 200, catalogue.text
    assert slug not in {r["id"] for r in catalogue.json()["features"]}


def test_restricted_layers_do_not_exist_without_a_key(
    keys: Keys, server: Server
) -> None:
    assert PUBLIC in collection_ids(server)
    assert_absent(server, SECRET)
    assert_absent(server, OTHER)
    # The HTML pages do not name them either.
    page = get(f"{server.url}/collections", f="html")
    assert page.status_code == 200 and SECRET not in page.text


def test_a_granted_key_opens_exactly_its_layers(keys: Keys, server: Server) -> None:
    assert collection_ids(server, keys.secret) >= {PUBLIC, SECRET}
    assert_absent(server, OTHER, keys.secret)
    response = get(f"{server.url}/collections/{SECRET}/items", keys.secret, f="json")
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert len(features) == 7
    # What a key opens must not be kept by shared caches.
    cache = response.headers.get("Cache-Control", "")
    assert "private" in cache and "public" not in cache
    assert "X-API-Key" in response.headers.get("Vary", "")
    one = get(
        f"{server.url}/collections/{SECRET}/items/{features[0]['id']}",
        keys.secret,
        f="json",
    )
    assert one.status_code == 200
    openapi = get(f"{server.url}/openapi", keys.secret, f="json").json()
    assert f"/collections/{SECRET}/items" in openapi["paths"]
    scheme = openapi["components"]["securitySchemes"]["sdiApiKey"]
    assert scheme == scheme | {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    catalogue = get(
        f"{server.url}/collections/catalog/items", keys.secret, f="json", limit=50
    )
    assert SECRET in {r["id"] for r in catalogue.json()["features"]}
    # The other key sees its own layer and not this one.
    assert collection_ids(server, keys.other) >= {PUBLIC, OTHER}
    assert SECRET not in collection_ids(server, keys.other)


def test_the_key_can_travel_as_a_query_parameter(keys: Keys, server: Server) -> None:
    response = requests.get(
        f"{server.url}/collections/{SECRET}/items",
        params={"f": "json", "limit": 3, "api_key": keys.secret},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Paging links keep the key, so clients that follow them stay inside.
    next_link = next(link for link in body["links"] if link["rel"] == "next")
    assert "api_key=" in next_link["href"]
    assert requests.get(next_link["href"], timeout=30).status_code == 200


@pytest.mark.parametrize("bad", ["nonsense", "sdi_abcdef_wrong", "sdi__"])
def test_an_unknown_key_is_refused_with_401(
    keys: Keys, server: Server, bad: str
) -> None:
    response = get(f"{server.url}/collections", bad, f="json")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "InvalidApiKey" and "key" in body["description"]


def test_a_revoked_key_stops_working_within_two_seconds(
    keys: Keys, server: Server, db: Conn
) -> None:
    url = f"{server.url}/collections/{SECRET}/items"
    assert get(url, keys.secret, f="json").status_code == 200
    apikeys.revoke_key(db, keys.admin, keys.secret_id)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if get(url, keys.secret, f="json").status_code == 401:
            break
        time.sleep(0.1)
    assert get(url, keys.secret, f="json").status_code == 401


def test_withdrawing_a_grant_hides_the_layer_again(
    keys: Keys, server: Server, db: Conn
) -> None:
    assert SECRET in collection_ids(server, keys.secret)
    apikeys.set_key_layers(db, keys.admin, keys.secret_id, [])
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and SECRET in collection_ids(server, keys.secret):
        time.sleep(0.1)
    assert_absent(server, SECRET, keys.secret)


def test_making_a_layer_public_shows_it_to_everyone(
    keys: Keys, server: Server, db: Conn
) -> None:
    assert SECRET not in collection_ids(server)
    registry.update_layer(db, SECRET, {"visibility": "public"})
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and SECRET not in collection_ids(server):
        time.sleep(0.1)
    assert SECRET in collection_ids(server)


def test_html_pages_never_reuse_a_keyed_view(keys: Keys, server: Server) -> None:
    # pygeoapi caches the translated configuration for its templates by
    # language only; sdi keeps one per configuration, so a page rendered for a
    # key holder does not leak into the public pages or back.
    for _ in range(2):
        keyed = get(f"{server.url}/collections", keys.secret, f="html")
        assert keyed.status_code == 200 and SECRET in keyed.text
        public = get(f"{server.url}/collections", f="html")
        assert public.status_code == 200 and SECRET not in public.text
        for page in ("", "/items"):
            response = get(f"{server.url}/collections/{SECRET}{page}", f="html")
            assert response.status_code == 404
