"""Error responses reach the log at the right level, read from a real gunicorn.

A client error (4xx) is one INFO line naming the status, request and reason,
with no traceback; a server error (5xx) is an ERROR line with the traceback.
Before, every 400 (a mistyped ``bbox``) was logged at ERROR with a traceback
by pygeoapi's ``get_exception``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import requests

from sdi.settings import Settings
from tests.api.gunicorn import gunicorn_api
from tests.api.layerdata import Conn, buildings_layer

SLUG = "landsd_buildings"


def _config_at_info(settings: Settings, tmp_path: Path) -> Settings:
    """The project's configuration with pygeoapi's log level at INFO."""
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    base = config / "pygeoapi.yml"
    text = base.read_text(encoding="utf-8")
    assert "  level: WARNING" in text
    base.write_text(text.replace("  level: WARNING", "  level: INFO"), encoding="utf-8")
    return settings.with_(config_dir=config)


def _log_until(log: Path, needle: str) -> str:
    """The log once it holds ``needle`` (workers write it as they answer)."""
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text(encoding="utf-8")
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_client_errors_at_info_server_errors_at_error(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    buildings_layer(db, SLUG, 5)
    log = tmp_path / "gunicorn.log"
    items = f"/collections/{SLUG}/items"
    with gunicorn_api(_config_at_info(settings, tmp_path), tmp_path, workers=1) as url:
        client_errors = {
            f"{items}?bbox=nonsense": 400,
            f"{items}?limit=many": 400,
            f"{items}/999999": 404,
            "/collections/no_such_layer": 404,
            f"{items}?f=xml": 400,
        }
        for path, status in client_errors.items():
            response = requests.get(f"{url}{path}", timeout=30)
            assert response.status_code == status, (path, response.text)
        text = _log_until(log, "404 NotFound on GET /collections/no_such_layer")
        start = len(text)
        for path in client_errors:
            line = next(
                (
                    ln
                    for ln in text.splitlines()
                    if f"on GET {path.split('?')[0]}" in ln
                ),
                None,
            )
            assert line is not None and " INFO " in line, (path, text[-3000:])
        assert "Traceback" not in text, text[-3000:]
        assert " ERROR " not in text, text[-3000:]

        # A server error: the layer's table has gone.
        db.execute(f"ALTER TABLE sdi_data.{SLUG} RENAME TO gone")
        response = requests.get(f"{url}{items}", timeout=30)
        assert response.status_code == 500
        assert "gone" not in response.text and "sdi_data" not in response.text
        text = _log_until(log, f"500 NoApplicableCode on GET {items}")[start:]
    error = next(
        ln for ln in text.splitlines() if f"500 NoApplicableCode on GET {items}" in ln
    )
    assert " ERROR " in error
    assert "Traceback" in text and "UndefinedTable" in text
