"""Shared fixtures for the admin app's tests (pages and JSON API).

- ``app`` / ``client``: the admin app from ``create_app(settings)`` (CSRF ON, as
  in production) and an anonymous test client.
- ``people``: two agencies (``landsd`` = "own", ``td`` = "other") and a user of
  each role: ``platform``, ``admin``, ``editor``, ``other_admin``,
  ``other_editor`` and ``inactive`` (a deactivated agency admin of landsd).
  Every password is :data:`PASSWORD`.
- ``login(client, email)``: signs in through the real form, with the CSRF token
  scraped from the page; ``csrf_token(client, path)`` scrapes a form's token.
- ``client_for(user)``: a new client signed in as ``user`` (inactive users get
  a session row as if one had survived their deactivation).
- ``token_for(user)``: a personal API token; ``bearer(token)`` its headers.
- ``make_layer(agency, slug, visibility="public")``: a registered layer.
- ``served``: the app over real HTTP on 127.0.0.1 (for Playwright); its base URL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from sdi import registry
from sdi.admin import create_app
from sdi.registry import sessions
from sdi.registry.models import Agency, Layer, User
from sdi.registry.tokens import create_token
from sdi.settings import Settings
from tests.conftest import free_port

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class People:
    """Two agencies and one user of each role (see the module docstring)."""

    agency: Agency
    other_agency: Agency
    platform: User
    admin: User
    editor: User
    other_admin: User
    other_editor: User
    inactive: User


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The admin app, CSRF protection on."""
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    existing = application.extensions.get("sdi_pool")
    if existing is not None:
        existing.close()


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The admin app over HTTP on 127.0.0.1 (threaded); yields its base URL."""
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An anonymous client."""
    return app.test_client()


@pytest.fixture
def people(conn: Conn) -> People:
    """Agencies landsd (own) and td (other), and users of every role."""
    own = registry.create_agency(conn, "landsd", "Lands Department", "地政總署")
    other = registry.create_agency(conn, "td", "Transport Department", "運輸署")

    def user(email: str, role: str, agency: Agency | None) -> User:
        return registry.create_user(conn, email, PASSWORD, role, agency=agency)

    inactive = user("inactive@landsd.test", "agency_admin", own)
    conn.execute("UPDATE sdi.users SET active = false WHERE id = %s", (inactive.id,))
    inactive = registry.get_user_by_email(conn, inactive.email)  # type: ignore[assignment]
    return People(
        agency=own,
        other_agency=other,
        platform=user("platform@sdi.test", "platform_admin", None),
        admin=user("admin@landsd.test", "agency_admin", own),
        editor=user("editor@landsd.test", "agency_editor", own),
        other_admin=user("admin@td.test", "agency_admin", other),
        other_editor=user("editor@td.test", "agency_editor", other),
        inactive=inactive,
    )


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the first form on the page at ``path``."""
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no csrf_token on {path} ({page.status_code})"
    return match[1]


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    """Sign in through the form (CSRF token scraped from the page)."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def client_for(app: Flask, conn: Conn) -> Callable[[User], FlaskClient]:
    """Make a client signed in as a user."""

    def make(user: User) -> FlaskClient:
        new = app.test_client()
        if user.active:
            response = login(new, user.email)
            assert response.status_code == 302, response.get_data(as_text=True)
        else:
            # Deactivation ends sessions; forge one that survived it anyway.
            session_id = sessions.create(conn, user)
            with new.session_transaction() as session:
                session["_user_id"] = session_id
                session["_fresh"] = True
        return new

    return make


@pytest.fixture
def token_for(conn: Conn) -> Callable[[User], str]:
    """Make a personal API token for a user (also for inactive users)."""

    def make(user: User) -> str:
        _, token = create_token(conn, user, "test token")
        return token

    return make


def bearer(token: str) -> dict[str, str]:
    """Headers authenticating with ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_layer(conn: Conn) -> Callable[..., Layer]:
    """Register a layer: ``make_layer(agency, slug, visibility="public")``."""

    def make(agency: Agency, slug: str, visibility: str = "public") -> Layer:
        licence = registry.get_licence(conn, "hk-csdi")
        data = registry.LayerInput(
            slug=slug,
            title_en=slug.replace("_", " ").title(),
            licence_id=licence.id,
            visibility=visibility,
        )
        return registry.create_layer(conn, agency, data)

    return make
