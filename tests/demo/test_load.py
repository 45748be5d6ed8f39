"""Loading the demo through the real ingestion path, and loading it again."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from sdi import registry
from sdi.demo import (
    DEMO_LAYERS,
    DEMO_PASSWORD,
    DEMO_PASSWORD_ENV,
    DEMO_USERS,
    demo_counts,
    generate_files,
    load_demo,
)
from sdi.ingest import ingest_file
from sdi.registry.passwords import check_password
from sdi.settings import Settings

Conn = psycopg.Connection[Any]


def current(conn: Conn, slug: str, where: str = "TRUE") -> int:
    """Features of the latest version of ``slug`` matching ``where``."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE _sdi_to IS NULL AND ({})").format(
        sql.Identifier("sdi_data", slug), sql.SQL(where)
    )  # type: ignore[arg-type]
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def snapshot(conn: Conn) -> tuple[Any, ...]:
    """What a second load must not change."""
    return tuple(
        conn.execute(q).fetchone()
        for q in (
            "SELECT count(*), max(id) FROM sdi.audit_log",
            "SELECT generation FROM sdi.publication",
            "SELECT count(*) FROM sdi.users",
            "SELECT count(*) FROM sdi.agencies",
            "SELECT string_agg(slug || ':' || published_version, ',' ORDER BY slug)"
            " FROM sdi.layers",
            "SELECT count(*) FROM sdi.layer_versions",
        )
    )


def test_load_demo_then_again(conn: Conn, settings: Settings) -> None:
    messages: list[str] = []
    summary = load_demo(conn, settings, progress=messages.append)
    counts = demo_counts()

    assert summary.agencies_created == ["landsd", "td"]
    assert summary.users_created == [u.email for u in DEMO_USERS]
    assert summary.layers_created == [spec.slug for spec in DEMO_LAYERS]
    assert [(v.layer, v.number) for v in summary.ingested] == [
        ("landsd_buildings", 1),
        ("landsd_buildings", 2),
        ("td_bus_stops", 1),
        ("td_roads", 1),
    ]
    assert summary.published == [
        ("landsd_buildings", 2),
        ("td_bus_stops", 1),
        ("td_roads", 1),
    ]
    assert any("Ingesting landsd_buildings version 2" in m for m in messages)
    report = str(summary)
    assert "landsd.editor@example.com" in report and DEMO_PASSWORD in report

    layers = {layer.slug: layer for layer in registry.list_layers(conn, published=True)}
    assert set(layers) == {spec.slug for spec in DEMO_LAYERS}
    for spec in DEMO_LAYERS:
        layer = layers[spec.slug]
        assert registry.get_licence_by_id(conn, layer.licence_id).code == spec.licence
        assert registry.get_agency(conn, spec.agency).id == layer.agency_id
        assert layer.key_column is not None
        assert layer.published_version == len(spec.files)

    v1, v2 = registry.list_versions(conn, layers["landsd_buildings"].id)
    assert v1.feature_count == counts.buildings_v1
    assert v1.diff["added"] == counts.buildings_v1
    assert v2.feature_count == counts.buildings_v2
    assert v2.diff == counts.buildings_diff
    assert v2.diff == {"added": 90, "changed": 150, "removed": 60, "unchanged": 2790}
    assert v1.source_crs == v2.source_crs == "EPSG:2326"
    (stops,) = registry.list_versions(conn, layers["td_bus_stops"].id)
    assert stops.feature_count == counts.bus_stops
    assert (stops.source_encoding or "").lower().replace("-", "") == "big5hkscs"
    (roads,) = registry.list_versions(conn, layers["td_roads"].id)
    assert roads.feature_count == counts.roads

    # Stored in WGS 84, inside Hong Kong, Chinese text intact (HKSCS included).
    assert current(conn, "landsd_buildings") == counts.buildings_v2
    assert current(conn, "td_bus_stops", "\"STOP_NAMEC\" LIKE '%深水埗%'") > 0
    assert current(conn, "td_bus_stops", "\"STOP_NAMEC\" LIKE '%鰂魚涌%'") > 0
    assert current(conn, "td_roads", "\"ROUTE_NAMEC\" = '彌敦道'") > 0
    outside = (
        "NOT ST_Within(_sdi_geom, ST_MakeEnvelope(113.8, 22.15, 114.45, 22.57, 4326))"
    )
    for spec in DEMO_LAYERS:
        assert current(conn, spec.slug, outside) == 0, spec.slug

    for spec in DEMO_USERS:
        user = registry.get_user_by_email(conn, spec.email)
        assert user is not None and user.role == spec.role
        assert check_password(user.password_hash, DEMO_PASSWORD)

    before = snapshot(conn)
    again = load_demo(conn, settings)
    assert not again.changed
    assert str(again).startswith("Demo already loaded")
    assert snapshot(conn) == before


def test_load_completes_an_interrupted_run(conn: Conn, settings: Settings) -> None:
    """A demo layer that has only version 1 gets version 2; the rest is made."""
    scale = 0.1
    agency = registry.create_agency(conn, "landsd", "Lands Department", "地政總署")
    spec = DEMO_LAYERS[0]
    registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug=spec.slug,
            title_en=spec.title_en,
            licence_id=registry.get_licence(conn, spec.licence).id,
            key_column=spec.key_column,
        ),
    )
    files = generate_files(settings.var_dir / "pre", scale=scale)
    ingest_file(conn, settings, files["landsd_buildings_v1"], layer=spec.slug)

    summary = load_demo(conn, settings, scale=scale)
    assert summary.agencies_created == ["td"]
    assert summary.layers_created == ["td_bus_stops", "td_roads"]
    first = summary.ingested[0]
    assert (first.layer, first.number) == (spec.slug, 2)
    assert first.diff == demo_counts(scale).buildings_diff
    assert ("landsd_buildings", 2) in summary.published


def test_rollback_survives_a_reload(conn: Conn, settings: Settings) -> None:
    load_demo(conn, settings, scale=0.1)
    registry.publish(conn, "landsd_buildings", 1)
    again = load_demo(conn, settings, scale=0.1)
    assert not again.changed
    assert registry.get_layer(conn, "landsd_buildings").published_version == 1


def test_password_from_environment(
    conn: Conn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEMO_PASSWORD_ENV, "another-demo-password")
    summary = load_demo(conn, settings, scale=0.1)
    assert summary.credentials == DEMO_PASSWORD_ENV
    assert "another-demo-password" not in str(summary)
    user = registry.get_user_by_email(conn, "td.admin@example.com")
    assert user is not None
    assert check_password(user.password_hash, "another-demo-password")
