"""The admin JSON API: authentication, errors, OpenAPI, and the accounts endpoints."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from sdi.admin.api import ENDPOINTS
from sdi.admin.api.openapi import openapi_path
from sdi.registry.models import User
from tests.admin.conftest import Conn, People, bearer


def test_missing_token_is_401_json(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "Unauthorized"


def test_openapi_lists_every_registered_route(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.0")
    for ep in ENDPOINTS:
        assert openapi_path(ep.rule) in doc["paths"]


def test_token_authenticates(
    client: FlaskClient, people: People, token_for: Callable[[User], str], conn: Conn
) -> None:
    token = token_for(people.editor)
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["email"] == people.editor.email
    assert "password_hash" not in response.get_json()

    for headers in ({}, bearer("sdit_nothing_here"), {"Authorization": token}):
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
