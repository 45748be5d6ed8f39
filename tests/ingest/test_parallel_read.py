"""Reading a large file in several processes gives exactly what one process gives.

The threshold is lowered so that small generated files take the parallel path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.errors import IngestError
from sdi.ingest import ingest_file, read
from sdi.settings import Settings
from tests.ingest import files

Conn = psycopg.Connection[Any]


@pytest.fixture
def parallel_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lower the threshold; record how many processes each parallel read used."""
    monkeypatch.setattr(read, "_PARALLEL_MIN_FEATURES", 100)
    calls: list[int] = []
    real = read._parallel_batches

    def observed(source: Any, parts: int, size: int) -> Any:
        calls.append(parts)
        return real(source, parts, size)

    monkeypatch.setattr(read, "_parallel_batches", observed)
    return calls


@pytest.fixture
def agency(conn: Conn) -> registry.Agency:
    return registry.create_agency(conn, "landsd", "Lands Department")


def layer(conn: Conn, agency: registry.Agency, slug: str) -> str:
    licence = registry.get_licence(conn, "hk-csdi").id
    registry.create_layer(
        conn, agency, registry.LayerInput(slug=slug, title_en=slug, licence_id=licence)
    )
    return slug


def table(conn: Conn, slug: str) -> list[tuple[Any, ...]]:
    query = (
        f"SELECT _sdi_fid, _sdi_key, ST_AsEWKB(_sdi_geom), to_jsonb(t) - '_sdi_geom'"  # noqa: S608
        f" FROM sdi_data.{slug} t ORDER BY _sdi_fid"
    )
    return conn.execute(query.encode()).fetchall()


def test_parallel_and_sequential_reads_load_the_same_rows(
    conn: Conn,
    settings: Settings,
    agency: registry.Agency,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=2000, geometry="Polygon")
    one = ingest_file(conn, settings, archive, layer=layer(conn, agency, "one"))
    parallel = request.getfixturevalue("parallel_reads")
    source_seen: list[int] = []
    many = ingest_file(
        conn,
        settings,
        archive,
        layer=layer(conn, agency, "many"),
        progress=lambda n, total: source_seen.append(n),
    )
    assert many.feature_count == one.feature_count == 2000
    assert many.schema == one.schema and many.extent == one.extent
    assert many.report["warnings"] == one.report["warnings"]
    # same features, same order, same ids, same keys (hashes of the same bytes)
    rows_one, rows_many = table(conn, "one"), table(conn, "many")
    assert [r[2:] for r in rows_many] == [r[2:] for r in rows_one]
    assert [r[1] for r in rows_many] == [r[1] for r in rows_one]
    assert source_seen[-1] == 2000
    assert parallel == [2]
    assert list(settings.upload_dir.iterdir()) == []


def test_a_bad_record_read_by_another_process_fails_cleanly(
    conn: Conn,
    settings: Settings,
    agency: registry.Agency,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(read, "_PARALLEL_MIN_FEATURES", 10)
    archive = files.make_truncated_shapefile_zip(tmp_path, n=40)
    parts: list[int] = []
    real = read._parallel_batches
    monkeypatch.setattr(
        read,
        "_parallel_batches",
        lambda source, n, size: parts.append(n) or real(source, n, size),
    )
    slug = layer(conn, agency, "broken")
    with pytest.raises(IngestError, match=r"^Feature 40 of truncated\.shp"):
        ingest_file(conn, settings, archive, layer=slug)
    assert conn.execute("SELECT to_regclass('sdi_data.broken')").fetchone() == (None,)
    assert list(settings.upload_dir.iterdir()) == []
    assert parts == [2]


def test_a_geopackage_layer_read_in_parallel_matches(
    conn: Conn,
    settings: Settings,
    agency: registry.Agency,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    gpkg = files.make_geopackage(tmp_path, n=600)
    one = ingest_file(
        conn, settings, gpkg, layer=layer(conn, agency, "one"), source_layer="districts"
    )
    parallel = request.getfixturevalue("parallel_reads")
    many = ingest_file(
        conn,
        settings,
        gpkg,
        layer=layer(conn, agency, "many"),
        source_layer="districts",
    )
    assert many.feature_count == one.feature_count == 600
    assert [r[1:] for r in table(conn, "many")] == [r[1:] for r in table(conn, "one")]
    assert parallel == [2]
