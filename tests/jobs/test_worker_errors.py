"""Which errors the worker retries, and what a failed job tells its user (issue 9)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sdi.jobs import Job, queue
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.ingest import files
from tests.jobs.conftest import fast_worker, running, spool, spooled
from tests.jobs.test_worker import finished, wait_for

Conn = psycopg.Connection[Any]


def waiting_backend(conn: Conn) -> int:
    """The pid of the session waiting for a lock (the worker's ingest)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("no session of this database waited for a lock in 120 s")


def test_a_database_error_about_the_job_fails_it_at_once(
    conn: Conn,
    db_url: str,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    # The layer is locked elsewhere and the worker's sessions give up after
    # 200 ms (LockNotAvailable, an OperationalError like "row is too big").
    # Before: taken for a database outage and retried until "worker died".
    layer = make_layer()
    job = enqueue_file(conn, settings, layer, editor, files.make_geojson(tmp_path))
    impatient = settings.with_(database_url=db_url + "?options=-c%20lock_timeout%3D200")
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM sdi.layers WHERE id = %s FOR UPDATE", (layer.id,))
        with running(fast_worker(impatient, stale_after=1, max_attempts=3)):
            done = wait_for(conn, job.id, finished)
    assert done.status == "failed" and done.attempts == 1, done
    assert done.error == (
        "The database could not complete this job (PostgreSQL error 55P03). "
        "Nothing was saved; the worker log has the details."
    )
    assert spooled(settings) == []


def test_a_lost_connection_is_still_retried(
    conn: Conn,
    db_url: str,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    job = enqueue_file(conn, settings, layer, editor, files.make_geojson(tmp_path))
    with running(fast_worker(settings, stale_after=1, max_attempts=3)):
        with psycopg.connect(db_url) as holder:
            holder.execute(
                "SELECT 1 FROM sdi.layers WHERE id = %s FOR UPDATE", (layer.id,)
            )
            # An administrator ends the worker's session mid-job.
            pid = waiting_backend(conn)
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        done = wait_for(conn, job.id, finished)
    assert done.status == "succeeded" and done.attempts == 2, done
    assert spooled(settings) == []


def enqueue_file(
    conn: Conn, settings: Settings, layer: Layer, user: User, source: Path
) -> Job:
    """Queue ``source`` as is (enqueue_ingest would refuse some at once)."""
    return queue.enqueue(
        conn,
        "ingest",
        {
            "path": str(spool(settings, source)),
            "filename": source.name,
            "layer": layer.slug,
            "actor": user.email,
        },
        layer_id=layer.id,
        created_by=user.id,
    )


def unnamed_attribute(directory: Path) -> Path:
    point = {"type": "Point", "coordinates": [114.17, 22.3]}
    return files.write_geojson(
        directory / "unnamed.geojson",
        [files.geojson_feature(point, {"ID": 1, "": "x"})],
    )


def cut_geojson_zip(directory: Path) -> Path:
    inner = directory / "inner"
    inner.mkdir()
    (inner / "roads.geojson").write_text('{"type": "FeatureCollection", "features": [')
    return files.zip_files(directory / "roads.zip", [inner / "roads.geojson"])


def wide_numbers(directory: Path) -> Path:
    point = {"type": "Point", "coordinates": [114.17, 22.3]}
    props = {f"a{i:04d}": i for i in range(1500)}
    return files.write_geojson(
        directory / "wide.geojson", [files.geojson_feature(point, props)]
    )


@pytest.mark.parametrize(
    ("make_file", "reason"),
    [
        # Before: 'ALTER TABLE ... ADD COLUMN ""' quoted in the job's error.
        (unnamed_attribute, "unnamed.geojson has an attribute without a name"),
        # Before: GDAL's message, with the path of the work directory.
        (cut_geojson_zip, "roads.geojson could not be opened as GeoJSON"),
        # Before: "row is too big", retried three times, then "worker died".
        (wide_numbers, "wide.geojson has 1500 attributes, 1500 of them numbers"),
    ],
)
def test_a_failed_ingest_says_why_in_a_sentence(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
    make_file: Callable[[Path], Path],
    reason: str,
) -> None:
    layer = make_layer()
    job = enqueue_file(conn, settings, layer, editor, make_file(tmp_path))
    with running(fast_worker(settings, stale_after=1)):
        done = wait_for(conn, job.id, finished)
    assert done.status == "failed" and done.attempts == 1, done
    error = done.error or ""
    assert reason in error, error
    for internal in ("ALTER", "ADD COLUMN", "Traceback", "/uploads/", "/spool/"):
        assert internal not in error, error
    assert str(settings.var_dir) not in json.dumps(done.error)
    assert spooled(settings) == []
