"""The body limits under real gunicorn (gthread), as ``sdi serve`` runs the admin app.

gunicorn marks its input as terminated (``wsgi.input_terminated``), so a
chunked body is read through werkzeug's limit; the werkzeug server of the
other tests dechunks on its own. Both must stop at the limit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sdi.registry.models import Layer
from sdi.settings import Settings
from tests.admin.conftest import People
from tests.admin.test_bodies import GIB, STREAM, assert_nothing_written, raw_post
from tests.conftest import free_port

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@pytest.fixture
def admin_gunicorn(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The admin app alone under gunicorn; yields its URL and its upload spool."""
    port = free_port()
    (tmp_path / "admin_wsgi.py").write_text(
        textwrap.dedent(
            """
            from sdi.admin import create_app
            from sdi.settings import load_settings

            app = create_app(load_settings())
            """
        ),
        encoding="utf-8",
    )
    assert settings.database_url is not None
    var = tmp_path / "gvar"
    spool = var / "uploads" / "spool"
    spool.mkdir(parents=True)
    os.utime(spool, ns=(0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": settings.database_url,
        "SDI_VAR_DIR": str(var),
        "SDI_SECRET_KEY": "gunicorn-body-test",
        "PYTHONPATH": str(tmp_path),
    }
    log = (tmp_path / "gunicorn.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--worker-class", "gthread", "--threads", "2", "admin_wsgi:app"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # the port accepting connections is the signal
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", spool
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a request still hanging: stop it anyway
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()


def test_gunicorn_refuses_large_bodies_before_writing_anything(
    admin_gunicorn: tuple[str, Path],
    people: People,
    make_layer: Callable[..., Layer],
) -> None:
    base, spool = admin_gunicorn
    layer = make_layer(people.agency, "landsd_places")
    declared = raw_post(base, "/login", length=GIB, body=False)
    assert declared.status == 413
    assert "SDI_MAX_FORM_BYTES" in declared.body
    chunked = raw_post(base, "/login", chunked=True)
    assert chunked.status == 413
    assert chunked.sent < STREAM
    upload = f"/layers/{layer.slug}/versions"
    anonymous = raw_post(base, upload)
    assert anonymous.status == 400 and anonymous.sent < STREAM
    api = raw_post(base, f"/api{upload}", chunked=True)
    assert api.status == 401 and api.sent < STREAM
    assert_nothing_written(spool)
