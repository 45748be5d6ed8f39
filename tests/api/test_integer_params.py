"""Integer parameters beyond PostgreSQL's bigint: a 400 naming the parameter.

Before, ``offset=99999999999999999999`` reached SQL and came back as
"A parameter value does not fit the attribute: bigint out of range".
"""

from __future__ import annotations

import pytest
import requests

from sdi.api.int_params import BIGINT_MAX
from tests.api.conftest import Server
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer

SLUG = "landsd_buildings"
HUGE = "99999999999999999999"


@pytest.fixture
def two_versions(db: Conn) -> None:
    buildings_layer(db, SLUG, 5)
    add_version(db, SLUG, buildings(range(7)))


def _get(server: Server, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{server.url}/collections/{SLUG}/{path}",
        params={"f": "json", **params},
        timeout=30,
    )


@pytest.mark.usefixtures("two_versions")
@pytest.mark.parametrize(
    ("path", "name", "value", "minimum"),
    [
        ("items", "offset", HUGE, 0),
        ("items", "offset", str(BIGINT_MAX + 1), 0),
        ("items", "after", HUGE, 0),
        ("items", "limit", HUGE, 1),
        ("items", "offset", "-" + HUGE, 0),
        ("changes", "offset", HUGE, 0),
        ("changes", "limit", HUGE, 1),
    ],
)
def test_integers_beyond_bigint_are_a_400_naming_the_parameter(
    server: Server, path: str, name: str, value: str, minimum: int
) -> None:
    response = _get(server, path, **{name: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert body["description"].startswith(f"{name} must be from {minimum} to ")
    assert str(BIGINT_MAX) in body["description"]
    assert "bigint" not in body["description"]
    assert "attribute" not in body["description"]


@pytest.mark.usefixtures("two_versions")
@pytest.mark.parametrize("value", ["1e3", "1_000", "١٢", "0x10", "3.0", "-1"])
def test_integers_that_are_not_whole_numbers_are_a_400(
    server: Server, value: str
) -> None:
    response = _get(server, "items", offset=value)
    assert response.status_code == 400, response.text
    assert response.json()["description"].startswith("offset must be ")


@pytest.mark.usefixtures("two_versions")
def test_the_largest_bigint_is_served(server: Server) -> None:
    for name in ("offset", "after", "limit"):
        response = _get(server, "items", **{name: str(BIGINT_MAX)})
        assert response.status_code == 200, (name, response.text)
    assert _get(server, "items", limit=str(BIGINT_MAX)).json()["numberReturned"] == 7
    assert _get(server, "items", offset=str(BIGINT_MAX)).json()["features"] == []


@pytest.mark.usefixtures("two_versions")
def test_version_and_feature_ids_beyond_bigint_never_reach_sql(server: Server) -> None:
    version = _get(server, "items", version=HUGE)
    assert version.status_code == 400
    assert version.json()["description"].startswith("version must be a version number")
    feature = _get(server, f"items/{HUGE}")
    assert feature.status_code == 404
    assert "bigint" not in feature.text
    changes = _get(server, "changes", to=HUGE)
    assert changes.status_code == 400
    assert changes.json()["description"].startswith("to must be a version number")
