"""Run the OGC API under gunicorn (several worker processes) for a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from sdi.settings import Settings
from tests.conftest import free_port

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@contextmanager
def gunicorn_api(
    settings: Settings, tmp_path: Path, *, workers: int = 3, threads: int = 2
) -> Iterator[str]:
    """Serve ``create_app`` with gunicorn until the block ends; yields the base URL."""
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
    # A file, not a pipe: nobody reads a pipe while the test runs, and a full
    # one blocks every worker that logs.
    log = (tmp_path / "gunicorn.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "probe_wsgi:app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/collections", timeout=10).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
