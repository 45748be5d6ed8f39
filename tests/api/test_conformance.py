"""``/conformance`` names exactly the classes sdi's routes pass."""

from __future__ import annotations

import requests

from sdi.api.conformance import COMMON, FEATURES, RECORDS, VECTOR_TILES
from tests.api.conftest import Server
from tests.api.layerdata import Conn, buildings_layer


def classes(server: Server) -> set[str]:
    response = requests.get(
        f"{server.url}/conformance", params={"f": "json"}, timeout=30
    )
    assert response.status_code == 200
    body = response.json()["conformsTo"]
    assert len(body) == len(set(body)), "a class is listed twice"
    return set(body)


def test_with_no_layers_only_the_common_classes_and_the_catalogue(
    db: Conn, server: Server
) -> None:
    assert classes(server) == set(COMMON) | set(RECORDS)


def test_vector_layers_add_features_filtering_crs_and_tiles(
    db: Conn, server: Server
) -> None:
    buildings_layer(db)
    declared = classes(server)
    assert declared == set(COMMON) | set(RECORDS) | set(FEATURES) | set(VECTOR_TILES)
    # pygeoapi would also claim these; sdi does not serve them.
    for absent in (
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/advanced-property-roles",
        "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core",
    ):
        assert absent not in declared
    # Common Part 3 "schemas": the collection's schema with typed attributes.
    schema = requests.get(
        f"{server.url}/collections/landsd_buildings/schema",
        params={"f": "json"},
        timeout=30,
    ).json()
    assert schema["properties"]["FLOORS"]["type"] == "integer"
    assert schema["properties"]["OPENED"]["format"] == "date"
    page = requests.get(f"{server.url}/conformance", params={"f": "html"}, timeout=30)
    assert page.status_code == 200 and "features-filter" in page.text
