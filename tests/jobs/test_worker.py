"""The worker, for real: threads and processes against the test database."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.errors import IngestError, TooLargeError
from sdi.ingest.table import existing_columns
from sdi.jobs import Job, enqueue_ingest, get_job, queue
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.ingest import files
from tests.jobs.conftest import fast_worker, running, spool, spooled
from tests.rasters.files import write_dem

Conn = psycopg.Connection[Any]
SDI = str(Path(sys.executable).parent / "sdi")


def wait_for(
    conn: Conn, job_id: int, until: Callable[[Job], bool], timeout: float = 60
) -> Job:
    """Poll the job until ``until(job)``."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(conn, job_id)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck: {job}"
        time.sleep(0.05)


def finished(job: Job) -> bool:
    return job.done


def queue_upload(
    conn: Conn, settings: Settings, layer: Layer, user: User, source: Path, **opts: Any
) -> Job:
    path = spool(settings, source)
    return enqueue_ingest(
        conn,
        settings,
        layer,
        path,
        filename=source.name,
        user_id=user.id,
        actor=user.email,
        options=opts,
    )


def broken_zip(directory: Path) -> Path:
    """A real zipped Shapefile cut in half (an interrupted download)."""
    whole = files.make_shapefile_zip(directory / "whole").read_bytes()
    path = directory / "broken.zip"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def table_exists(conn: Conn, slug: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"sdi_data.{slug}",)).fetchone()
    return row is not None and row[0] is not None


def test_a_good_upload_becomes_a_version(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer(key_column="ID")
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    assert len(spooled(settings)) == 2  # the upload and its directory
    with running(fast_worker(settings)):
        done = wait_for(conn, job.id, finished)
    assert done.status == "succeeded", done.error
    assert done.result is not None and done.result["version"] == 1
    assert done.result["feature_count"] == 10
    assert done.message.startswith("Version 1: 10 features")
    assert done.progress == 10 and done.total == 10 and done.attempts == 1
    version = registry.get_version(conn, layer.id, 1)
    assert version.created_by == editor.id and version.source_filename == "places.zip"
    assert spooled(settings) == []  # the upload is gone
    actions = [e.action for e in registry.audit.list_audit(conn, object_id=layer.slug)]
    assert actions[:2] == ["ingest", "upload"]


BAD_UPLOADS = {
    "broken-zip": (broken_zip, r"^broken\.zip is not a valid zip archive"),
    "zip-slip": (files.make_zip_slip, r"member '\.\./evil\.txt' points outside"),
    "corrupt-last-record": (
        files.make_truncated_shapefile_zip,
        r"^Feature 25 of truncated\.shp could not be read: .*nothing was loaded\.$",
    ),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_fails_with_the_reason_and_leaves_nothing(
    case: str,
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    make_file, reason = BAD_UPLOADS[case]
    layer = make_layer()
    source = make_file(tmp_path)
    # Queued as is: enqueue_ingest would refuse the broken zips at once (see
    # test_enqueue_refuses_what_cannot_load); the worker must cope all the same.
    job = queue.enqueue(
        conn,
        "ingest",
        {
            "path": str(spool(settings, source)),
            "filename": source.name,
            "layer": layer.slug,
            "actor": editor.email,
        },
        layer_id=layer.id,
        created_by=editor.id,
    )
    with running(fast_worker(settings)):
        done = wait_for(conn, job.id, finished)
    assert done.status == "failed" and done.result is None
    assert done.error is not None
    assert re.search(reason, done.error), done.error
    assert registry.list_versions(conn, layer.id) == []
    assert not table_exists(conn, layer.slug)
    assert spooled(settings) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("make_file", "error", "reason"),
    [
        (broken_zip, IngestError, r"^broken\.zip is not a valid zip archive"),
        (files.make_zip_slip, IngestError, r"'\.\./evil\.txt' points outside"),
        (files.make_zip_absolute, IngestError, r"has an absolute path"),
        (files.make_zip_symlink, IngestError, r"is a symbolic link"),
        (files.make_empty_zip, IngestError, r"^empty\.zip is empty"),
        (files.make_fake_zip, IngestError, r"^notazip\.zip is not a valid zip"),
        (
            lambda d: files.make_empty_file(d, "nothing.geojson"),
            IngestError,
            r"^nothing\.geojson is empty \(0 bytes\)",
        ),
    ],
)
def test_enqueue_refuses_what_cannot_load(
    make_file: Callable[[Path], Path],
    error: type[Exception],
    reason: str,
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    with pytest.raises(error, match=reason):
        queue_upload(conn, settings, layer, editor, make_file(tmp_path))
    assert queue.list_jobs(conn) == []


def test_enqueue_refuses_a_file_over_the_limit(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    small = settings.with_(max_upload_bytes=100)
    with pytest.raises(TooLargeError, match="the limit is 100 "):
        queue_upload(conn, small, layer, editor, files.make_shapefile_zip(tmp_path))
    assert queue.list_jobs(conn) == []


def test_a_failed_second_version_leaves_the_first_untouched(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    first = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    # A GeoJSON whose columns differ (they would be added) and whose last
    # feature is corrupt: the added columns must vanish with the failure.
    second = queue_upload(
        conn, settings, layer, editor, files.make_bad_geojson(tmp_path, n=50)
    )
    with running(fast_worker(settings)):
        assert wait_for(conn, first.id, finished).status == "succeeded"
        columns = existing_columns(conn, layer.slug)
        failed = wait_for(conn, second.id, finished)
    assert failed.status == "failed"
    assert failed.error is not None and "Feature 50 of bad.geojson" in failed.error
    assert existing_columns(conn, layer.slug) == columns
    assert [v.number for v in registry.list_versions(conn, layer.id)] == [1]
    rows = conn.execute(
        "SELECT count(*), max(_sdi_from), count(_sdi_to) FROM sdi_data.landsd_places"
    ).fetchone()
    assert rows == (10, 1, 0)
    assert spooled(settings) == []


def test_progress_is_visible_while_the_ingest_transaction_is_open(
    conn: Conn,
    db_url: str,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path, n=300)
    )
    # The loader's last write is its audit entry: hold the audit table so the
    # ingest transaction stays open after all features are loaded.
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE sdi.audit_log IN EXCLUSIVE MODE")
        with running(fast_worker(settings)):
            busy = wait_for(conn, job.id, lambda j: j.progress == 300)
            assert busy.status == "running" and busy.total == 300
            assert busy.message == "Loading features"
            # Not committed yet: no version is visible.
            assert registry.list_versions(conn, layer.id) == []
            beat = busy.heartbeat_at
            assert beat is not None
            later = wait_for(
                conn,
                job.id,
                lambda j: j.heartbeat_at is not None and j.heartbeat_at > beat,
            )
            assert later.status == "running"  # the heartbeat goes on meanwhile
            blocker.rollback()
            done = wait_for(conn, job.id, finished)
    assert done.status == "succeeded"
    assert [v.number for v in registry.list_versions(conn, layer.id)] == [1]


def test_two_workers_never_take_the_same_job(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layers = [make_layer(f"landsd_places_{i}") for i in range(3)]
    jobs = []
    for round_ in range(2):
        for i, layer in enumerate(layers):
            source = files.make_shapefile_zip(
                tmp_path / f"r{round_}l{i}", n=5 + round_ * 3
            )
            jobs.append(queue_upload(conn, settings, layer, editor, source))
    with (
        running(fast_worker(settings, "alpha")),
        running(fast_worker(settings, "beta")),
    ):
        done = [wait_for(conn, j.id, finished) for j in jobs]
    assert all(j.status == "succeeded" for j in done), [j.error for j in done]
    assert all(j.attempts == 1 and j.worker in ("alpha", "beta") for j in done)
    for layer in layers:
        versions = registry.list_versions(conn, layer.id)
        assert [(v.number, v.feature_count) for v in versions] == [(1, 5), (2, 8)]
    assert spooled(settings) == []


def test_a_job_left_by_a_dead_worker_is_run_again(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    dead = queue.claim(conn, "dead-worker")
    assert dead is not None and dead.id == job.id
    conn.execute(
        "UPDATE sdi.jobs SET heartbeat_at = now() - interval '10 minutes'"
        " WHERE id = %s",
        (job.id,),
    )
    with running(fast_worker(settings, "rescuer", stale_after=30)):
        done = wait_for(conn, job.id, finished)
    assert done.status == "succeeded" and done.worker == "rescuer"
    assert done.attempts == 2
    assert spooled(settings) == []


def test_run_once(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    worker = fast_worker(settings)
    assert worker.run_once() is None
    layer = make_layer()
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    done = worker.run_once()
    assert done is not None and done.id == job.id and done.status == "succeeded"


# -- the worker process ------------------------------------------------------------


def worker_process(db_url: str, settings: Settings) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    env |= {"SDI_DATABASE_URL": db_url, "SDI_VAR_DIR": str(settings.var_dir)}
    return subprocess.Popen(
        [SDI, "worker", "--poll", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """What ``proc`` printed up to the first line holding ``text`` (its signal)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not seen or text not in seen[-1]:
            left = deadline - time.monotonic()
            assert left > 0 and selector.select(left), f"no {text!r}: {seen}"
            line = proc.stdout.readline()
            assert line, f"exited before {text!r}: {''.join(seen)}"
            seen.append(line)
    return "".join(seen)


def test_worker_process_stops_on_sigterm_when_idle(
    db_url: str, settings: Settings
) -> None:
    proc = worker_process(db_url, settings)
    seen = read_until(proc, "started")  # its signal handlers are in place
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    out = seen + out
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_worker_process_finishes_its_job_on_one_signal(
    conn: Conn,
    db_url: str,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE sdi.audit_log IN EXCLUSIVE MODE")
        proc = worker_process(db_url, settings)
        wait_for(conn, job.id, lambda j: j.progress == 10)
        proc.send_signal(signal.SIGINT)
        seen = read_until(proc, "finishing job")
        assert proc.poll() is None  # still finishing the job
        blocker.rollback()
    out, _ = proc.communicate(timeout=30)
    out = seen + out
    assert proc.returncode == 0, out
    assert "finishing job" in out
    assert get_job(conn, job.id).status == "succeeded"
    assert spooled(settings) == []


def test_a_second_signal_interrupts_and_requeues_the_job(
    conn: Conn,
    db_url: str,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    upload = spooled(settings)
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE sdi.audit_log IN EXCLUSIVE MODE")
        proc = worker_process(db_url, settings)
        wait_for(conn, job.id, lambda j: j.progress == 10)
        proc.send_signal(signal.SIGTERM)
        seen = read_until(proc, "finishing job")  # the first one was handled
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        out = seen + out
        blocker.rollback()
    assert proc.returncode == 0, out
    assert "interrupting job" in out and "Traceback" not in out
    back = get_job(conn, job.id)
    assert back.status == "queued" and back.worker is None
    assert registry.list_versions(conn, layer.id) == []
    assert not table_exists(conn, layer.slug)
    assert spooled(settings) == upload  # kept for the next run
    done = fast_worker(settings).run_once()
    assert done is not None and done.status == "succeeded" and done.attempts == 2


def test_abandoned_uploads_are_swept(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer()
    source = files.make_shapefile_zip(tmp_path)
    orphan = spool(settings, source)  # its request died before queuing
    fresh = spool(settings, source)  # perhaps still arriving
    queued = queue_upload(conn, settings, layer, editor, source)  # waits its turn
    waiting = Path(queued.payload["path"])
    two_days_ago = time.time() - 2 * 86_400
    for path in (orphan, waiting):
        os.utime(path.parent, (two_days_ago, two_days_ago))
    fast_worker(settings).recover(conn)
    assert not orphan.parent.exists()
    assert fresh.exists() and waiting.exists()


def test_a_geotiff_upload_makes_the_new_layer_a_raster(
    conn: Conn,
    settings: Settings,
    make_layer: Callable[..., Layer],
    editor: User,
    tmp_path: Path,
) -> None:
    layer = make_layer(slug="landsd_dem")  # registered from the admin app: vector
    dem = write_dem(tmp_path / "dem.tif", width=64, height=48)
    done = fast_worker(settings).run_once()
    assert done is None
    job = queue_upload(conn, settings, layer, editor, dem)
    done = fast_worker(settings).run_once()
    assert done is not None and done.id == job.id
    assert done.status == "succeeded", done.error
    assert done.message == "Version 1: 64 x 48 cells, 1 band(s)"
    assert registry.get_layer(conn, layer.slug).kind == "raster"
    assert registry.get_version(conn, layer.id, 1).geometry_type == "Raster"
    # once it holds a raster, a vector file is refused and nothing changes
    job = queue_upload(
        conn, settings, layer, editor, files.make_shapefile_zip(tmp_path)
    )
    failed = fast_worker(settings).run_once()
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and "exactly one GeoTIFF" in failed.error
    assert [v.number for v in registry.list_versions(conn, layer.id)] == [1]
