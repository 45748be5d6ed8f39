"""Responses for an explicit version are cached for SDI_VERSION_MAX_AGE, over HTTP.

Not ``immutable`` and not for a year: a version can be taken down or its
layer made restricted, and caches must let go of it within a lifetime an
operator can purge within (README, "Caching and purging").
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sdi.settings import Settings, load_settings
from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer

SLUG = "landsd_buildings"
CENTRAL_Z15 = (15, 14271, 26766)  # a tile over the test buildings


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    return api_settings.with_(version_max_age=120)


def get(url: str, **params: Any) -> requests.Response:
    response = requests.get(url, params=params, timeout=30)
    assert response.status_code in (200, 204), (url, response.text[:300])
    return response


def test_every_explicit_version_route_uses_the_setting(
    db: Conn, server: Server
) -> None:
    buildings_layer(db, SLUG, 25)
    add_version(db, SLUG, buildings(range(5, 30)))
    collection = f"{server.url}/collections/{SLUG}"
    fid = get(f"{collection}/items", version=1, limit=1).json()["features"][0]["id"]
    z, y, x = CENTRAL_Z15
    pinned = {
        "items": get(f"{collection}/items", version=1),
        "items html": get(f"{collection}/items", version=1, f="html"),
        "feature": get(f"{collection}/items/{fid}", version=1),
        "changes": get(f"{collection}/changes", **{"from": 1, "to": 2}),
        "tile": get(f"{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}", version=1),
    }
    for name, response in pinned.items():
        assert response.headers["Cache-Control"] == "public, max-age=120", name
        assert response.headers["ETag"].startswith('"'), name  # strong
    published = {
        "items": (get(f"{collection}/items"), "public, max-age=60"),
        "tile": (
            get(f"{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}"),
            "public, max-age=300",
        ),
    }
    for name, (response, expected) in published.items():
        assert response.headers["Cache-Control"] == expected, name


def test_version_max_age_setting() -> None:
    assert load_settings({}).version_max_age == 86_400
    assert load_settings({"SDI_VERSION_MAX_AGE": "0"}).version_max_age == 0
    for bad in ("-1", "a day"):
        with pytest.raises(ValueError, match="SDI_VERSION_MAX_AGE"):
            load_settings({"SDI_VERSION_MAX_AGE": bad})
