"""Fixtures for raster layers: the API server of ``tests.api`` and a layer helper."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sdi import registry
from sdi.providers.raster import close_datasets
from tests.api.conftest import Server, api_settings, db, server
from tests.api.layerdata import Conn, ensure_agency

__all__ = ["Server", "api_settings", "db", "raster_layer", "server"]


@pytest.fixture(autouse=True)
def _close_raster_handles() -> Iterator[None]:
    """Drop this thread's cached COG handles after each test (files go away)."""
    yield
    close_datasets()


def raster_layer(
    conn: Conn,
    slug: str,
    *,
    agency: str = "landsd",
    visibility: str = "public",
    licence: str = "hk-csdi",
) -> registry.Layer:
    """Register an empty raster layer."""
    return registry.create_layer(
        conn,
        ensure_agency(conn, agency),
        registry.LayerInput(
            slug=slug,
            title_en="Digital elevation model",
            title_zh="數碼高程模型",
            abstract_en="Ground elevation for testing.",
            licence_id=registry.get_licence(conn, licence).id,
            visibility=visibility,
            kind="raster",
        ),
    )
