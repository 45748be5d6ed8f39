"""The OGC API reads no large request bodies (issue 9, found again by red team).

Every OGC API route is a GET, yet pygeoapi's ``APIRequest.from_flask`` reads
``request.data`` on every request: an anonymous GET carrying an 800 MB body
held 800 MB in the worker until it was answered, once per thread. Bodies over
``SDI_MAX_FORM_BYTES`` are now refused with a 413 before they are read, with a
declared length or chunked, under werkzeug and under gunicorn.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdi.settings import Settings
from tests.admin.test_bodies import GIB, STREAM, raw_post
from tests.api.conftest import Server
from tests.api.gunicorn import gunicorn_api

#: Well under what the body would be: the server answered long before the end.
_READ_AT_MOST = 8 * 1024**2


def _assert_refused_unread(base: str, *, chunked: bool) -> None:
    answer = raw_post(
        base,
        "/collections?f=json",
        method="GET",
        headers={"Content-Type": "application/json"},
        length=None if chunked else STREAM,
        chunked=chunked,
    )
    assert answer.status == 413, answer.body
    assert "SDI_MAX_FORM_BYTES" in answer.body
    assert answer.sent < _READ_AT_MOST, f"{answer.sent} bytes were taken"


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_get_with_a_large_body_is_refused_unread(
    server: Server, chunked: bool
) -> None:
    _assert_refused_unread(server.url, chunked=chunked)


def test_a_declared_huge_body_is_refused_from_its_headers(server: Server) -> None:
    answer = raw_post(
        server.url,
        "/collections/nosuch/items",
        method="GET",
        headers={"Content-Type": "application/json"},
        length=GIB,
        body=False,
    )
    assert answer.status == 413, answer.body


def test_small_bodies_are_still_ignored(server: Server) -> None:
    answer = raw_post(
        server.url,
        "/collections?f=json",
        method="GET",
        headers={"Content-Type": "application/json"},
        length=1024,
    )
    assert answer.status == 200, answer.body


def test_gunicorn_refuses_large_bodies_unread(
    api_settings: Settings, tmp_path: Path
) -> None:
    with gunicorn_api(api_settings, tmp_path, workers=1, threads=2) as base:
        _assert_refused_unread(base, chunked=False)
        _assert_refused_unread(base, chunked=True)
