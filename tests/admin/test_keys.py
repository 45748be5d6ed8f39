"""API key pages: create (shown once), grants of own-agency layers, expiry, revoke."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from sdi.registry import apikeys
from sdi.registry.models import Layer, User
from tests.admin.conftest import Conn, People, csrf_token


def test_key_lifecycle_through_the_pages(
    client_for: Callable[[User], FlaskClient],
    people: People,
    conn: Conn,
    make_layer: Callable[..., Layer],
) -> None:
    roads = make_layer(people.agency, "landsd_roads", "restricted")
    lots = make_layer(people.agency, "landsd_lots", "restricted")
    make_layer(people.other_agency, "td_buses", "restricted")
    client = client_for(people.admin)
    page = client.get("/keys/").get_data(as_text=True)
    assert "No API keys yet." in page
    assert 'value="landsd_roads"' in page and 'value="td_buses"' not in page

    token = csrf_token(client, "/keys/")
    response = client.post(
        "/keys/",
        data={
            "name": "GIS vendor",
            "layers": ["landsd_roads"],
            "expires": "2099-12-31",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = re.search(r"sdi_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}", html)
    assert shown and "shown only this once" in html
    key = shown[0]
    found = apikeys.verify(conn, key)
    assert found is not None and found[1] == {roads.id}
    record = found[0]
    assert record.expires_at is not None and record.expires_at.year == 2099
    with client.session_transaction() as session:
        assert key not in str(dict(session))
    listing = client.get("/keys/").get_data(as_text=True)
    assert key not in listing and record.prefix in listing and "active" in listing

    # Grants: own agency's layers only.
    response = client.post(
        f"/keys/{record.id}/layers",
        data={"layers": ["landsd_roads", "landsd_lots"], "csrf_token": token},
    )
    assert response.status_code == 302
    assert apikeys.verify(conn, key)[1] == {roads.id, lots.id}  # type: ignore[index]
    response = client.post(
        f"/keys/{record.id}/layers", data={"layers": ["td_buses"], "csrf_token": token}
    )
    assert response.status_code == 400
    assert apikeys.verify(conn, key)[1] == {roads.id, lots.id}  # type: ignore[index]
    response = client.post(
        "/keys/", data={"name": "x", "layers": ["td_buses"], "csrf_token": token}
    )
    assert response.status_code == 400
    assert len(apikeys.list_keys(conn, people.admin, people.agency.id)) == 1

    # Expiry shows on the page and stops the key.
    conn.execute("UPDATE sdi.api_keys SET expires_at = now() - interval '1s'")
    assert apikeys.verify(conn, key) is None
    assert "expired" in client.get(f"/keys/{record.id}").get_data(as_text=True)
    conn.execute("UPDATE sdi.api_keys SET expires_at = NULL")
    assert apikeys.verify(conn, key) is not None

    response = client.post(f"/keys/{record.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert apikeys.verify(conn, key) is None
    detail = client.get(f"/keys/{record.id}").get_data(as_text=True)
    assert "revoked" in detail and "Revoke this key" not in detail


def test_bad_key_forms(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.admin)
    token = csrf_token(client, "/keys/")
    for data, message in (
        ({"name": ""}, "This field is required."),
        ({"name": "k", "expires": "2001-01-01"}, "future"),
        ({"name": "k", "expires": "not a date"}, "Not a valid date value."),
    ):
        response = client.post("/keys/", data={**data, "csrf_token": token})
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data
    assert apikeys.list_keys(conn, people.admin, people.agency.id) == []


def test_platform_admin_picks_the_agency(
    client_for: Callable[[User], FlaskClient],
    people: People,
    conn: Conn,
    make_layer: Callable[..., Layer],
) -> None:
    make_layer(people.other_agency, "td_buses", "restricted")
    client = client_for(people.platform)
    page = client.get("/keys/").get_data(as_text=True)
    assert "New key" not in page  # which agency's? choose first
    token = csrf_token(client, "/keys/")
    assert (
        client.post("/keys/", data={"name": "k", "csrf_token": token}).status_code
        == 404
    )
    page = client.get("/keys/?agency=td").get_data(as_text=True)
    assert "New key" in page and 'value="td_buses"' in page
    response = client.post(
        "/keys/?agency=td",
        data={"name": "k", "layers": ["td_buses"], "csrf_token": token},
    )
    assert response.status_code == 200
    assert len(apikeys.list_keys(conn, people.platform, people.other_agency.id)) == 1
