"""A real HTTP server (werkzeug, threaded) running ``sdi.api.create_app`` per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from sdi.api import create_app, live_api
from sdi.providers import close_pools
from sdi.settings import Settings
from tests.api.layerdata import Conn, connect
from tests.conftest import free_port


@dataclass
class Server:
    """A running API: its base URL, app and the settings it was built with."""

    url: str
    app: Flask
    settings: Settings


@pytest.fixture
def db(db_url: str) -> Iterator[Conn]:
    """An autocommit connection to the test database."""
    with connect(db_url) as conn:
        yield conn


@pytest.fixture
def api_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a free port, with SDI_DATABASE_URL set as ``sdi serve`` does."""
    assert settings.database_url is not None
    monkeypatch.setenv("SDI_DATABASE_URL", settings.database_url)
    return settings.with_(port=free_port())


@pytest.fixture
def server(api_settings: Settings) -> Iterator[Server]:
    """The OGC API served over HTTP on 127.0.0.1 until the test ends."""
    app = create_app(api_settings)
    httpd = make_server(api_settings.host, api_settings.port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(api_settings.public_url, app, api_settings)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        live_api(app).close()
        close_pools()
