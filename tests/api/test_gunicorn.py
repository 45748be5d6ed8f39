"""Several gunicorn worker processes all follow a publish and a rollback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests

from sdi import registry
from sdi.settings import Settings
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer
from tests.conftest import free_port

SLUG = "landsd_buildings"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def test_all_workers_follow_publication(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    buildings_layer(db, SLUG, 25)
    port = free_port()
    (tmp_path / "probe_wsgi.py").write_text(
        textwrap.dedent(
            """
            from sdi.api import create_app
            from sdi.settings import load_settings

            def app():
                return create_app(load_settings())
            """
        ),
        encoding="utf-8",
    )
    assert settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": settings.database_url,
        "SDI_PORT": str(port),
        "SDI_CONFIG_DIR": str(settings.config_dir),
        "SDI_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(tmp_path),
    }
    server = subprocess.Popen(
        [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "3",
         "--worker-class", "gthread", "--threads", "2", "probe_wsgi:app()"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/collections/{SLUG}/items"

    def matched() -> int:
        r = requests.get(url, params={"limit": 1, "BLDG_ID": "B0030"}, timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["numberMatched"])

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if matched() == 0:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        # warm every worker on version 1 first
        assert {matched() for _ in range(30)} == {0}

        add_version(db, SLUG, buildings(range(31)))
        published = time.monotonic()
        time.sleep(2.0)
        assert {matched() for _ in range(30)} == {1}, "a worker still serves v1"
        assert time.monotonic() - published < 5

        registry.publish(db, SLUG, 1)
        time.sleep(2.0)
        assert {matched() for _ in range(30)} == {0}, "a worker still serves v2"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
