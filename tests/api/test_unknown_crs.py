"""An unknown CRS in ``crs``, ``bbox-crs`` or ``filter-crs`` is a 400, spelt any way."""

from __future__ import annotations

import pytest
import requests

from tests.api.conftest import Server
from tests.api.layerdata import Conn, buildings_layer

SLUG = "landsd_buildings"
UNKNOWN = (
    "EPSG::99999",
    "EPSG:99999",
    "urn:ogc:def:crs:EPSG::99999",
    "http://www.opengis.net/def/crs/EPSG/0/99999",
    "http://www.opengis.net/def/crs/EPSG/0/abc",
)
PARAMS = {
    "crs": {},
    "bbox-crs": {"bbox": "114,22,115,23"},
    "filter-crs": {"filter": "FLOORS = 1"},
}


@pytest.fixture
def layer(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 5)
    return db


@pytest.mark.parametrize("name", PARAMS)
@pytest.mark.parametrize("value", UNKNOWN)
def test_an_unknown_crs_is_a_400_ogc_exception(
    layer: Conn, server: Server, name: str, value: str
) -> None:
    response = requests.get(
        f"{server.url}/collections/{SLUG}/items",
        params={name: value, **PARAMS[name]},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] and body["description"], body
    assert "Traceback" not in response.text
