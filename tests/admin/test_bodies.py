"""Request bodies over real HTTP: only signed-in uploads may be large, and nothing
anonymous or forged is read, let alone written to the upload spool.

The requests are sent on a raw socket: the headers first, then a generated
stream (64 MiB) until the server answers, or only headers declaring 1 GiB.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People, bearer
from tests.admin.layer_helpers import CSRF_FIELD, signed_in, snapshot
from tests.ingest import files

GIB = 1024**3
STREAM = 64 * 1024**2  # sent for real, 1 MiB at a time
BOUNDARY = "sdi-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass
class Answer:
    """What the server said, and how much of the body it let us send."""

    status: int
    headers: http.client.HTTPMessage
    body: str
    sent: int


def _file_part_head(name: str = "big.zip") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{name}"\r\nContent-Type: application/zip\r\n\r\n'
    ).encode()


def _stream(total: int, token: str | None = None) -> Iterator[bytes]:
    """A multipart body of ``total`` bytes: one file part of zeros.

    ``token``: a ``csrf_token`` field first, as a form without script sends it.
    """
    head = _file_part_head()
    if token is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"'
            f"\r\n\r\n{token}\r\n"
        ).encode() + head
    yield head
    left = total - len(head)
    chunk = b"\0" * (1024 * 1024)
    while left > 0:
        yield chunk[: min(left, len(chunk))]
        left -= len(chunk)


def raw_post(
    base: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    length: int | None = STREAM,
    body: bool = True,
    chunked: bool = False,
    method: str = "POST",
    token_in_body: str | None = None,
) -> Answer:
    """POST (``method``) ``path``; stop sending the body once the server answers.

    ``length``: the declared Content-Length (with ``body=False`` only the
    headers are sent); ``chunked``: no length, the stream in chunks.
    """
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=60)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}"]
    all_headers = {"Content-Type": MULTIPART, **(headers or {})}
    if chunked:
        all_headers["Transfer-Encoding"] = "chunked"
    else:
        assert length is not None
        all_headers["Content-Length"] = str(length)
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    sent = 0
    with sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            if body:
                total = STREAM if chunked else (length or 0)
                for piece in _stream(total, token_in_body):
                    if select.select([sock], [], [], 0)[0]:
                        break  # the server has answered
                    if chunked:
                        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                    sock.sendall(piece)
                    sent += len(piece)
                else:
                    if chunked:
                        sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed; its answer is still to be read
        response = http.client.HTTPResponse(sock)
        response.begin()
        text = response.read().decode("utf-8", "replace")
        return Answer(response.status, response.headers, text, sent)


@pytest.fixture
def spool(settings: Settings) -> Path:
    """The upload spool, existing, its mtime set to 0 so that any entry shows."""
    root = settings.upload_dir / "spool"
    root.mkdir(parents=True, exist_ok=True)
    os.utime(root, ns=(0, 0))
    return root


def assert_nothing_written(spool: Path) -> None:
    """Nothing was created in the spool (not even briefly), and it holds 0 bytes."""
    written = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
    assert written == 0, f"{written} bytes in the spool"
    assert spool.stat().st_mtime_ns == 0, "an entry was created in the spool"
    assert list(spool.iterdir()) == []


@pytest.fixture
def layer(people: People, make_layer: Callable[..., Layer]) -> Layer:
    return make_layer(people.agency, "landsd_places", "restricted")


def cookie_header(session: requests.Session) -> dict[str, str]:
    """The session's cookies as a Cookie header (for :func:`raw_post`)."""
    jar = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return {"Cookie": jar}


# -- every route but the uploads: a small limit, before anything is read ------------


def test_a_gib_declared_to_the_login_page_is_413_before_reading(
    served: str, spool: Path
) -> None:
    answer = raw_post(served, "/login", length=GIB, body=False)
    assert answer.status == 413
    assert "1.0 MiB, SDI_MAX_FORM_BYTES" in answer.body
    assert_nothing_written(spool)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_large_stream_to_the_login_page_is_refused_unwritten(
    served: str, spool: Path, chunked: bool
) -> None:
    answer = raw_post(served, "/login", chunked=chunked)
    assert answer.status == 413, answer.body
    assert "SDI_MAX_FORM_BYTES" in answer.body
    assert answer.sent < STREAM  # refused early, not after the whole stream
    assert_nothing_written(spool)


def test_signed_in_form_routes_and_the_json_api_are_limited_too(
    served: str,
    spool: Path,
    people: People,
    layer: Layer,
    token_for: Callable[[User], str],
) -> None:
    session, token = signed_in(served, people.admin)
    cookies = cookie_header(session)
    for path in (
        f"/layers/{layer.slug}/edit",
        f"/layers/{layer.slug}/publish",
        "/new-layer",
        "/logout",
    ):
        declared = raw_post(served, path, headers=cookies, length=GIB, body=False)
        assert declared.status == 413, path
        streamed = raw_post(served, path, headers={**cookies, "X-CSRFToken": token})
        assert streamed.status == 413, path
    api = {**bearer(token_for(people.admin)), "Content-Type": "application/json"}
    for method, path in (
        ("PATCH", f"/api/layers/{layer.slug}"),
        ("POST", "/api/layers"),
        ("POST", "/api/tokens"),
    ):
        answer = raw_post(served, path, headers=api, method=method)
        assert answer.status == 413, path
        error = json.loads(answer.body)["error"]
        assert error["code"] == "RequestEntityTooLarge"
        assert "SDI_MAX_FORM_BYTES" in error["message"]
    assert_nothing_written(spool)
    # A small form still works.
    out = session.post(
        f"{served}/logout", data={"csrf_token": token}, allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    assert out.status_code == 302


# -- the upload routes: caller checked before the body is read ----------------------


def test_the_page_upload_refuses_strangers_before_reading(
    served: str, conn: Conn, spool: Path, people: People, layer: Layer
) -> None:
    session, good = signed_in(served, people.editor)
    before = snapshot(conn)
    url = f"/layers/{layer.slug}/versions"
    # No cookie at all: no CSRF token can be valid.
    anonymous = raw_post(served, url)
    assert anonymous.status == 400, anonymous.body
    assert "security token" in anonymous.body
    # A session that is not signed in, with a valid token: off to sign in.
    visitor = requests.Session()
    token = CSRF_FIELD.search(visitor.get(f"{served}/login", timeout=30).text)
    assert token
    not_signed_in = raw_post(
        served, url, headers={**cookie_header(visitor), "X-CSRFToken": token[1]}
    )
    assert not_signed_in.status == 302
    assert not_signed_in.headers["Location"].endswith("/login")
    # Signed in, but no token, or a wrong one (in the header or the query).
    cookies = cookie_header(session)
    for headers in (cookies, {**cookies, "X-CSRFToken": "forged"}):
        forged = raw_post(served, url, headers=headers)
        assert forged.status == 400, forged.body
        assert "security token" in forged.body
        assert forged.sent < STREAM
    in_query_but_wrong = raw_post(served, f"{url}?csrf_token=forged", headers=cookies)
    assert in_query_but_wrong.status == 400
    # A good token only in the body is not looked for: the body is not read.
    in_body = raw_post(served, url, headers=cookies, token_in_body=good)
    assert in_body.status == 400 and in_body.sent < STREAM
    assert snapshot(conn) == before
    assert_nothing_written(spool)


def test_the_api_upload_refuses_a_missing_or_bad_token_before_reading(
    served: str, conn: Conn, spool: Path, people: People, layer: Layer
) -> None:
    before = snapshot(conn)
    url = f"/api/layers/{layer.slug}/versions"
    for headers in ({}, bearer("sdi_pat_forged"), {"Authorization": "Basic eDp5"}):
        answer = raw_post(served, url, headers=headers)
        assert answer.status == 401, answer.body
        assert answer.sent < STREAM
        declared = raw_post(served, url, headers=headers, length=GIB, body=False)
        assert declared.status == 401
    assert snapshot(conn) == before
    assert_nothing_written(spool)


def test_a_gib_declared_to_an_upload_route_is_over_the_upload_limit(
    served: str, spool: Path, people: People, layer: Layer, settings: Settings
) -> None:
    session, token = signed_in(served, people.editor)
    headers = {**cookie_header(session), "X-CSRFToken": token}
    over = settings.max_upload_bytes + 1
    answer = raw_post(
        served, f"/layers/{layer.slug}/versions", headers=headers, length=over,
        body=False,
    )  # fmt: skip
    assert answer.status == 413
    assert "SDI_MAX_UPLOAD_BYTES" in answer.body
    assert_nothing_written(spool)


def test_signed_in_uploads_work_with_the_header_and_without_javascript(
    served: str,
    conn: Conn,
    settings: Settings,
    people: People,
    layer: Layer,
    tmp_path: Path,
) -> None:
    session, token = signed_in(served, people.editor)
    source = files.make_shapefile_zip(tmp_path)
    url = f"{served}/layers/{layer.slug}/versions"
    with source.open("rb") as fh:  # as upload.js sends it
        scripted = session.post(
            url,
            files={"file": (source.name, fh)},
            data={"note": "scripted"},
            headers={"X-CSRFToken": token, "Accept": "application/json"},
            timeout=60,
        )
    assert scripted.status_code == 202, scripted.text
    assert scripted.json()["status"] == "queued"
    # The page's form carries the token in its action for a post without script.
    page = session.get(f"{served}/layers/{layer.slug}", timeout=30).text
    action = re.search(r'id="upload-form"[^>]*action="([^"]+)"', page, re.S)
    assert action and "?csrf_token=" in action[1]
    with source.open("rb") as fh:
        plain = session.post(
            served + action[1].replace("&amp;", "&"),
            files={"file": (source.name, fh)},
            allow_redirects=False,
            timeout=60,
        )
    assert plain.status_code == 303, plain.text
    assert plain.headers["Location"].startswith("/jobs/")
    kept = sorted(p for p in (settings.upload_dir / "spool").rglob("*") if p.is_file())
    assert [p.read_bytes() for p in kept] == [source.read_bytes()] * 2


def test_a_small_form_with_too_many_parts_is_told_so(served: str, spool: Path) -> None:
    fields = {f"f{i}": (None, "x") for i in range(1100)}  # werkzeug allows 1000
    answer = requests.post(f"{served}/login", files=fields, timeout=30)
    assert answer.status_code == 413
    assert "too many fields or files" in answer.text
    assert "SDI_MAX_FORM_BYTES" not in answer.text
    assert_nothing_written(spool)
