"""`sdi publish`, `sdi rollback`, `sdi unpublish`, `sdi versions` through click."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from sdi import registry
from sdi.cli import cli


def geojson(path: Path, n: int) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"ID": i, "NAME_TC": f"站{i}"},
            "geometry": {"type": "Point", "coordinates": [114.1 + i / 1000, 22.3]},
        }
        for i in range(n)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_publish_rollback_unpublish(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    registry.create_agency(conn, "td", "Transport Department")
    env = {
        "SDI_DATABASE_URL": db_url,
        "SDI_VAR_DIR": str(tmp_path / "var"),
        "SDI_COLLECTIONS_DIR": str(tmp_path / "collections"),
    }
    runner = CliRunner()

    def sdi(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    sdi(
        "ingest",
        str(geojson(tmp_path / "a.geojson", 3)),
        "--layer",
        "td_stops",
        "--agency",
        "td",
        "--key-column",
        "ID",
        "--publish",
    )
    out = sdi("ingest", str(geojson(tmp_path / "b.geojson", 5)), "--layer", "td_stops")
    assert "version 2: 5 features" in out and "+2 ~0 -0" in out
    assert registry.get_layer(conn, "td_stops").published_version == 1
    assert "published td_stops version 2" in sdi("publish", "td_stops")
    assert (tmp_path / "collections" / "td_stops.yml").exists()
    assert "rolled td_stops back to version 1" in sdi("rollback", "td_stops")
    assert registry.get_layer(conn, "td_stops").published_version == 1
    history = sdi("versions", "td_stops")
    assert "a.geojson" in history and "b.geojson" in history
    sdi("unpublish", "td_stops")
    assert registry.get_layer(conn, "td_stops").published_version is None
    assert not (tmp_path / "collections" / "td_stops.yml").exists()
    refused = runner.invoke(cli, ["rollback", "td_stops"], env=env)
    assert refused.exit_code == 1 and "not published" in refused.output
