"""Withdrawing versions one after another, down to none: the rows left are
always exactly the served versions' and the next upload is compared with the
newest one still served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sdi import registry
from sdi.errors import ForbiddenError, GoneError
from sdi.ingest import ingest_file
from sdi.settings import Settings

Conn = psycopg.Connection[Any]
SLUG = "td_stops"


def stops(directory: Path, name: str, labels: dict[int, str]) -> Path:
    path = directory / name
    features = [
        {
            "type": "Feature",
            "properties": {"ID": i, "NAME": label},
            "geometry": {"type": "Point", "coordinates": [114.2 + i / 100, 22.3]},
        }
        for i, label in labels.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        sql.SQL('SELECT "ID", "NAME", _sdi_from, _sdi_to FROM {} ORDER BY 1, 3').format(
            sql.Identifier("sdi_data", SLUG)
        )
    ).fetchall()


def test_withdraw_newest_first_down_to_nothing(
    conn: Conn, settings: Settings, tmp_path: Path
) -> None:
    agency = registry.create_agency(conn, "td", "Transport Department")
    platform = registry.create_user(
        conn, "root@sdi.test", "a long passphrase", "platform_admin"
    )
    admin = registry.create_user(
        conn, "admin@td.test", "a long passphrase", "agency_admin", agency=agency
    )
    registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug=SLUG,
            title_en="Stops",
            licence_id=registry.get_licence(conn, "hk-csdi").id,
            key_column="ID",
        ),
    )
    v1 = {1: "a", 2: "b", 3: "c"}
    v2 = v1 | {2: "b2"}
    v3 = {1: "a", 2: "b2", 3: "c3", 4: "d"}
    for number, labels in enumerate((v1, v2, v3), start=1):
        path = stops(tmp_path, f"v{number}.geojson", labels)
        ingest_file(conn, settings, path, layer=SLUG)
    registry.publish(conn, SLUG, 3)

    with pytest.raises(ForbiddenError):
        registry.withdraw_version(conn, SLUG, 3, "wrong file", by=admin)
    assert registry.get_layer(conn, SLUG).published_version == 3

    done = registry.withdraw_version(conn, SLUG, 3, "wrong file", by=platform)
    assert (done.published_after, done.rows_deleted, done.rows_reopened) == (2, 2, 1)
    open_rows = {r[0]: r[1] for r in rows(conn) if r[3] is None}
    assert open_rows == v2
    with pytest.raises(GoneError):
        registry.publish(conn, SLUG, 3)

    done = registry.withdraw_version(conn, SLUG, 2, "also wrong", by=platform)
    assert done.published_after == 1
    assert [(r[0], r[1], r[3]) for r in rows(conn)] == [
        (i, label, None) for i, label in v1.items()
    ]

    done = registry.withdraw_version(conn, SLUG, 1, "all of it", by=None)
    assert done.published_after is None and rows(conn) == []
    assert registry.get_layer(conn, SLUG).published_version is None

    version = ingest_file(
        conn, settings, stops(tmp_path, "v4.geojson", {9: "z"}), layer=SLUG
    )
    assert version.number == 4
    assert version.diff == {"added": 1, "changed": 0, "removed": 0, "unchanged": 0}
    actions = [
        (e.action, e.details.get("version"), e.actor)
        for e in registry.audit.list_audit(conn, object_type="layer", object_id=SLUG)
        if e.action == "withdraw"
    ]
    assert actions == [
        ("withdraw", 1, "cli"),
        ("withdraw", 2, "root@sdi.test"),
        ("withdraw", 3, "root@sdi.test"),
    ]
