"""Publish, roll back, unpublish: registry pointer, audit entries and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.errors import BadInputError, NotFoundError
from sdi.ingest import ingest_file
from sdi.publish.actions import publish_layer, rollback, unpublish_layer
from sdi.settings import Settings
from tests.ingest import files

Conn = psycopg.Connection[Any]


@pytest.fixture
def slug(conn: Conn, settings: Settings, tmp_path: Path) -> str:
    agency = registry.create_agency(conn, "landsd", "Lands Department")
    licence = registry.get_licence(conn, "hk-csdi")
    layer = registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug="landsd_places", title_en="Places", licence_id=licence.id
        ),
    )
    for n in (10, 8, 6):
        ingest_file(
            conn,
            settings,
            files.make_shapefile_zip(tmp_path / f"n{n}", n=n),
            layer=layer.slug,
        )
    return layer.slug


def test_publish_rollback_unpublish(conn: Conn, settings: Settings, slug: str) -> None:
    generation = registry.current_generation(conn)
    yml = settings.collections_dir / f"{slug}.yml"

    layer = publish_layer(conn, settings, slug, actor="ed@example.org", user_id=None)
    assert layer.published_version == 3
    assert yml.exists() and "version: 3" in yml.read_text(encoding="utf-8")
    assert registry.current_generation(conn) > generation

    layer = rollback(conn, settings, slug, actor="ed@example.org")
    assert layer.published_version == 2
    assert "version: 2" in yml.read_text(encoding="utf-8")
    layer = rollback(conn, settings, slug, 1, actor="ed@example.org")
    assert layer.published_version == 1
    with pytest.raises(BadInputError, match="first version"):
        rollback(conn, settings, slug)
    with pytest.raises(BadInputError, match="to publish version 3, publish it"):
        rollback(conn, settings, slug, 3)

    layer = unpublish_layer(conn, settings, slug, actor="ed@example.org")
    assert layer.published_version is None and not yml.exists()
    with pytest.raises(BadInputError, match="not published"):
        rollback(conn, settings, slug)

    actions = [
        (e.action, e.details.get("version"), e.actor)
        for e in registry.audit.list_audit(conn, object_id=slug)
    ][:4]
    assert actions == [
        ("unpublish", None, "ed@example.org"),
        ("rollback", 1, "ed@example.org"),
        ("rollback", 2, "ed@example.org"),
        ("publish", 3, "ed@example.org"),
    ]


def test_missing_versions_and_layers(conn: Conn, settings: Settings, slug: str) -> None:
    publish_layer(conn, settings, slug, 3)
    with pytest.raises(NotFoundError, match="no version 0"):
        rollback(conn, settings, slug, 0)
    with pytest.raises(NotFoundError, match="no version 9"):
        publish_layer(conn, settings, slug, 9)
    with pytest.raises(NotFoundError):
        publish_layer(conn, settings, "nope")
    assert registry.get_layer(conn, slug).published_version == 3
