"""Fixtures: SDI_DATABASE_URL set to the test database; provider pools closed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sdi.providers import close_pools
from tests.api.layerdata import Conn, connect


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Conn]:
    """An autocommit connection to the test database the providers also read."""
    monkeypatch.setenv("SDI_DATABASE_URL", db_url)
    with connect(db_url) as conn:
        yield conn
    close_pools()
