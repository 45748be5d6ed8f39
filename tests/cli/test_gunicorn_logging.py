"""API keys sent as query parameters are masked in gunicorn's access log."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from gunicorn.config import Config

from sdi.cli.gunicorn_logging import RedactingLogger, redact

KEY = "sdi_abc123_s3cr3tvalue"


def test_redact_masks_every_api_key_value() -> None:
    assert redact(f"/items?api_key={KEY}&limit=5") == "/items?api_key=***&limit=5"
    assert redact(f"/items?limit=5&API_KEY={KEY}") == "/items?limit=5&API_KEY=***"
    assert redact(f"api_key={KEY}") == "api_key=***"
    assert redact("/items?my_api_key_hint=1") == "/items?my_api_key_hint=1"


def test_access_log_atoms_hold_no_key() -> None:
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/collections/x/items?api_key={KEY}&f=json",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/collections/x/items",
        "QUERY_STRING": f"api_key={KEY}&f=json",
        "REMOTE_ADDR": "127.0.0.1",
    }
    req = SimpleNamespace(headers=[("X-API-KEY", KEY), ("ACCEPT", "*/*")])
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(resp, req, environ, dt.timedelta(milliseconds=3))
    assert KEY not in repr(atoms)
    assert atoms["r"] == "GET /collections/x/items?api_key=***&f=json HTTP/1.1"
    assert atoms["q"] == "api_key=***&f=json"
    assert atoms["{x-api-key}i"] == "***"
    assert atoms["{accept}i"] == "*/*"


def test_the_upload_forms_csrf_token_is_masked_too() -> None:
    line = "POST /admin/layers/x/versions?csrf_token=IjQ1.Zx-y_z HTTP/1.1"
    assert redact(line) == "POST /admin/layers/x/versions?csrf_token=*** HTTP/1.1"
