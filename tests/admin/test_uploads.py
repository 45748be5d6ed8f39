"""Uploads through the pages: streamed to disk, queued, followed, refused."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from flask_login import login_required
from werkzeug.serving import make_server

from sdi import registry
from sdi.admin import create_app
from sdi.admin.bodies import page_upload
from sdi.jobs import get_job
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People, csrf_token, login
from tests.admin.layer_helpers import run_jobs, snapshot, spooled, upload_page
from tests.conftest import free_port
from tests.ingest import files


@pytest.fixture
def layer(people: People, make_layer: Callable[..., Layer]) -> Layer:
    return make_layer(people.agency, "landsd_places")


def test_an_upload_is_spooled_queued_and_loaded(
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.editor)
    source = files.make_shapefile_zip(tmp_path, name="地方")
    response = upload_page(client, layer.slug, source, encoding="", note="first load")
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["page_url"] == f"/jobs/{body['job']}"
    assert body["status_url"] == f"/jobs/{body['job']}.json"

    # The file waits in the spool, byte for byte, under its own name.
    (spool_dir, spooled_file) = spooled(settings)
    assert spooled_file.name == "地方.zip" and spooled_file.parent == spool_dir
    assert spooled_file.read_bytes() == source.read_bytes()
    job = get_job(conn, body["job"])
    assert job.payload["filename"] == "地方.zip" and job.payload["note"] == "first load"
    assert (
        job.payload["bytes"] == source.stat().st_size and "encoding" not in job.payload
    )
    assert job.created_by == people.editor.id
    upload_entry = registry.audit.list_audit(conn, object_id=layer.slug)[0]
    assert upload_entry.action == "upload" and upload_entry.actor == people.editor.email

    page = client.get(body["page_url"]).get_data(as_text=True)
    assert "地方.zip" in page and 'data-status="queued"' in page
    run_jobs(settings)
    status = client.get(body["status_url"]).get_json()
    assert status["status"] == "succeeded" and status["version"] == 1
    assert status["version_url"] == "/layers/landsd_places/versions/1"
    assert status["percent"] == 100 and status["progress"] == status["total"] == 10
    assert "path" not in json.dumps(status)  # no server paths leak
    assert spooled(settings) == []
    version = registry.get_version(conn, layer.id, 1)
    assert version.note == "first load" and version.source_filename == "地方.zip"
    done = client.get(body["page_url"]).get_data(as_text=True)
    assert 'href="/layers/landsd_places/versions/1"' in done


def test_a_plain_form_post_goes_to_the_job_page(
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.admin)
    response = upload_page(
        client, layer.slug, files.make_shapefile_zip(tmp_path), as_json=False
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/jobs/")
    # A bad file posted without the script comes back to the layer page, said.
    bad = upload_page(client, layer.slug, files.make_zip_slip(tmp_path), as_json=False)
    assert bad.status_code == 303
    assert bad.headers["Location"] == "/layers/landsd_places"
    page = client.get("/layers/landsd_places").get_data(as_text=True)
    assert "points outside the archive" in page.replace("&#39;", "'")
    assert len(spooled(settings)) == 2  # only the good upload, waiting


def test_bad_files_are_answered_in_json_for_the_script(
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.editor)
    before = snapshot(conn)
    response = upload_page(client, layer.slug, files.make_fake_zip(tmp_path))
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith(
        "notazip.zip is not a valid zip archive"
    )
    assert snapshot(conn) == before and spooled(settings) == []


def test_without_the_csrf_token_nothing_is_kept(
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.editor)
    before = snapshot(conn)
    response = upload_page(
        client, layer.slug, files.make_shapefile_zip(tmp_path), token="x"
    )
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert snapshot(conn) == before and spooled(settings) == []


def test_another_agency_cannot_upload(
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.other_editor)
    before = snapshot(conn)
    response = upload_page(client, layer.slug, files.make_shapefile_zip(tmp_path))
    assert response.status_code == 404
    assert snapshot(conn) == before and spooled(settings) == []


def test_file_parts_sent_elsewhere_are_not_kept(
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
) -> None:
    client = client_for(people.editor)
    token = csrf_token(client, "/login")
    response = client.post(
        "/layers/landsd_places/unpublish",
        data={"csrf_token": token, "file": (io.BytesIO(b"x" * 10_000), "a.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert spooled(settings) == []


def test_a_file_over_the_limit_is_413_with_the_limit(
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    tmp_path: Path,
) -> None:
    small = create_app(settings.with_(max_upload_bytes=100 * 1024))
    small.config["TESTING"] = True
    client = small.test_client()
    assert login(client, people.editor.email).status_code == 302
    big = tmp_path / "big.geojson"
    big.write_bytes(b" " * (300 * 1024))
    before = snapshot(conn)
    response = upload_page(client, layer.slug, big)
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "larger than this server accepts (100.0 KiB, SDI_MAX_UPLOAD_BYTES)" in text
    assert snapshot(conn) == before and spooled(settings) == []
    page = client.get("/layers/landsd_places").get_data(as_text=True)
    assert 'data-max-bytes="102400"' in page and "up to 100.0 KiB" in page
    small.extensions["sdi_pool"].close()


def test_file_parts_are_files_in_the_spool_not_memory(
    app: Flask,
    settings: Settings,
    people: People,
    layer: Layer,
    client_for: Callable[[User], FlaskClient],
) -> None:
    """A part bigger than MAX_FORM_MEMORY_SIZE is a real file in upload_dir.

    The probe is an upload route (``page_upload``): no other route takes a
    body this large.
    """
    seen: dict[str, Any] = {}

    @app.post("/_probe")
    @page_upload
    @login_required
    def probe() -> Any:
        stream = request.files["file"].stream
        seen["type"] = type(stream).__name__
        seen["name"] = Path(stream.name)
        seen["size"] = Path(stream.name).stat().st_size
        seen["fileno"] = stream.fileno()
        return jsonify({})

    client = client_for(people.editor)
    size = 4 * app.config["MAX_FORM_MEMORY_SIZE"]
    token = csrf_token(client, "/login")
    response = client.post(
        "/_probe",
        data={"file": (io.BytesIO(b"z" * size), "big.csv")},
        headers={"X-CSRFToken": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert seen["type"] == "BufferedRandom" and seen["fileno"] > 2
    assert seen["name"].name == "big.csv" and seen["size"] == size
    assert seen["name"].parent.parent == settings.upload_dir / "spool"
    assert spooled(settings) == []  # unclaimed: removed after the request


# -- a real server: the upload streams to disk --------------------------------------


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The admin app on a real werkzeug server in a thread."""
    app = create_app(settings)
    httpd = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    app.extensions["sdi_pool"].close()


@pytest.mark.slow
def test_a_large_upload_streams_to_disk_not_memory(
    server: str,
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    size = 512 * 1024 * 1024
    big = tmp_path / "big.geojson"
    with big.open("wb") as fh:  # sparse: costs no disk until the server copies it
        fh.truncate(size)
    token = token_for(people.editor)
    baseline = _rss_kib()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        curl = subprocess.run(
            [
                "curl",
                "-sS",
                "-H",
                f"Authorization: Bearer {token}",
                "-F",
                f"file=@{big}",
                f"{server}/api/layers/{layer.slug}/versions",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        done.set()
        sampler.join()
    body = json.loads(curl.stdout)
    assert body["status"] == "queued", curl.stdout + curl.stderr
    assert body["bytes"] == size
    (_, spooled_file) = spooled(settings)
    assert spooled_file.stat().st_size == size
    spooled_file.unlink()  # half a GiB: do not keep it in pytest's temp dirs
    growth_mib = (peak - baseline) / 1024
    print(f"server memory grew by {growth_mib:.1f} MiB for a {size >> 20} MiB upload")
    assert growth_mib < 64, f"server memory grew by {growth_mib:.0f} MiB"
