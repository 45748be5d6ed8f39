"""End to end through the command line: what `make run` does, on a private var/.

Starts the embedded cluster (as the postgres OS user when root), migrates,
ingests and publishes a file with `sdi ingest --publish`, serves with gunicorn
via `sdi up`, and reads the layer back over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

SDI = str(Path(sys.executable).parent / "sdi")


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="sdi-up-"))
    root.chmod(0o755)  # the postgres OS user must reach var/pg
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    environ |= {
        "SDI_VAR_DIR": str(root / "var"),
        "SDI_COLLECTIONS_DIR": str(root / "collections"),
        "SDI_PG_PORT": str(free_port()),
        "SDI_PORT": str(free_port()),
        "SDI_WORKERS": "2",
    }
    yield environ
    subprocess.run([SDI, "db", "stop"], env=environ, check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SDI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_cluster_ingest_publish_serve(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "start").returncode == 0
    again = run(env, "db", "start")  # reused, not re-initialised
    assert again.returncode == 0 and "Initialised" not in again.stdout
    migrated = run(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    # the embedded cluster has a password: TCP without it is refused
    password = (Path(env["SDI_VAR_DIR"]) / "pg.password").read_text().strip()
    assert len(password) >= 20
    created = run(
        env,
        "agency",
        "create",
        "lcsd",
        "--name",
        "Leisure and Cultural Services Department",
        "--name-zh",
        "康樂及文化事務署",
    )
    assert created.returncode == 0, created.stderr

    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2326"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"PARK_ID": i, "NAME_TC": f"公園{i}"},
                "geometry": {"type": "Point", "coordinates": [836000 + i, 817000]},
            }
            for i in range(25)
        ],
    }
    src = tmp_path / "parks.geojson"
    src.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    ingested = run(
        env,
        "ingest",
        str(src),
        "--agency",
        "lcsd",
        "--layer",
        "lcsd_parks",
        "--title",
        "Parks",
        "--key-column",
        "PARK_ID",
        "--publish",
    )
    assert ingested.returncode == 0, ingested.stderr
    assert "25 features" in ingested.stdout and "published" in ingested.stdout

    bad = run(env, "ingest", str(tmp_path / "nope.zip"), "--layer", "lcsd_parks")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr

    # The server's output goes to a file: a pipe nobody reads fills up and
    # blocks the server.
    log_path = tmp_path / "up.log"
    log = log_path.open("w", encoding="utf-8")
    server = subprocess.Popen(
        [SDI, "up", "--no-demo"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{env['SDI_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # The first request builds the configuration: slow on a busy
                # machine, so a timeout is retried like a refused connection.
                r = requests.get(
                    f"{base}/collections/lcsd_parks/items?f=json&limit=100", timeout=30
                )
                if r.status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        body = r.json()
        assert body["numberReturned"] == 25
        names = {f["properties"]["NAME_TC"] for f in body["features"]}
        assert "公園7" in names
        admin = requests.get(f"{base}/admin/login", timeout=30)
        assert admin.status_code == 200 and "csrf_token" in admin.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
