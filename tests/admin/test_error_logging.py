"""The admin app logs client errors at INFO, without a traceback, over HTTP."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.admin.conftest import People


def test_client_errors_are_info_lines(
    served: str, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sdi.admin")
    answers = {
        "/api/layers": 401,  # no token
        "/no-such-page": 404,
        "/api/no-such-endpoint": 404,
    }
    for path, status in answers.items():
        assert requests.get(f"{served}{path}", timeout=30).status_code == status
    # A form posted without its CSRF token.
    response = requests.post(f"{served}/login", data={"email": "x"}, timeout=30)
    assert response.status_code == 400
    logged = {
        r.getMessage().split(":")[0]: r
        for r in caplog.records
        if r.name.startswith("sdi.admin")
    }
    for path, status in [*answers.items(), ("/login", 400)]:
        record = logged[f"{status} on {'POST' if path == '/login' else 'GET'} {path}"]
        assert record.levelno == logging.INFO and record.exc_info is None, record
    assert not [r for r in logged.values() if r.levelno >= logging.WARNING]
