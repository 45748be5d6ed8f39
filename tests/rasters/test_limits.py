"""Coverage and map-tile limits over HTTP (issue 9): up-sampling, caps per
format, streamed CoverageJSON, and a bounded number of renders per worker."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sdi import registry
from sdi.api.render_limit import RenderBusyError, RenderLimiter, render_limiter
from sdi.ingest.raster import ingest_raster
from sdi.settings import Settings
from tests.api.conftest import Server
from tests.api.layerdata import Conn
from tests.conftest import free_port
from tests.rasters.conftest import raster_layer
from tests.rasters.files import write_dem

SMALL = "landsd_small"  # 200 x 200, as in the report
DEM = "landsd_dem"  # 1200 x 900 = 1,080,000 cells
#: GeoTIFF/PNG cap of this module's server (the default is 4096 x 4096).
GEOTIFF_CAP = 2_000_000
#: Long enough never to run out while a test holds the slots.
WAIT_S = 60.0
#: A render slot's lifetime here: longer than any test of this module holds one
#: (tests/rasters/test_render_hold.py tests the reclaim).
HOLD_S = 600.0


@pytest.fixture
def api_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Default limits except a smaller GeoTIFF cap, a long render wait and hold."""
    assert settings.database_url is not None
    monkeypatch.setenv("SDI_DATABASE_URL", settings.database_url)
    return settings.with_(
        port=free_port(),
        max_coverage_cells=GEOTIFF_CAP,
        render_wait_s=WAIT_S,
        render_hold_s=HOLD_S,
    )


@dataclass
class Published:
    """The server and its render limiter."""

    url: str
    limiter: RenderLimiter


@pytest.fixture
def published(db: Conn, server: Server, tmp_path: Path) -> Iterator[Published]:
    """A 200 x 200 and a 1200 x 900 DEM, published and public."""
    for slug, (width, height) in {SMALL: (200, 200), DEM: (1200, 900)}.items():
        raster_layer(db, slug)
        source = write_dem(tmp_path / f"{slug}.tif", width, height)
        version = ingest_raster(db, server.settings, source, layer=slug)
        registry.publish(db, slug, version.number)
    limiter = render_limiter(server.app)
    yield Published(server.url, limiter)
    assert limiter.running == 0 and limiter.waiting == 0, "a render slot leaked"


def coverage(published: Published, slug: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{published.url}/collections/{slug}/coverage", params=params, timeout=60
    )


def refusal(response: requests.Response) -> str:
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] in ("InvalidQuery", "InvalidParameterValue")
    return str(body["description"])


def test_upsampling_the_small_raster_is_refused(published: Published) -> None:
    # The report: 200 x 200 asked for as 4096 x 4096 CoverageJSON took 129 MB
    # and 7-22 s per request. Now a 400 before anything is read.
    for fmt in ("json", "GTiff", "png"):
        response = coverage(
            published, SMALL, f=fmt, **{"scale-size": "x(4096),y(4096)"}
        )
        message = refusal(response)
        assert "4,096 cells along E" in message
        assert "holds 200 source cells" in message
        assert "up-samples at most 2x per axis (SDI_MAX_COVERAGE_UPSAMPLE)" in message
        assert "i.e. 400 cells" in message
        assert len(response.content) < 1000
    for params in (
        {"scale-factor": "0.1"},
        {"scale-axes": "E(0.25)"},
        {"scale-size": "E(200),N(401)"},
    ):
        assert "SDI_MAX_COVERAGE_UPSAMPLE" in refusal(
            coverage(published, SMALL, f="json", **params)
        )


def test_upsampling_within_the_factor_is_served_streamed(
    published: Published,
) -> None:
    response = coverage(published, SMALL, f="json", **{"scale-size": "E(400),N(400)"})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"] == "application/prs.coverage+json"
    # Streamed in chunks, not built as one string first.
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    document = response.json()
    assert document["domain"]["axes"]["x"]["num"] == 400
    assert document["domain"]["axes"]["y"]["num"] == 400
    values = document["ranges"]["elevation"]["values"]
    assert len(values) == 400 * 400
    assert any(v is None for v in values) and any(v is not None for v in values)
    # The size of a 400 x 400 grid (at most ~20 bytes a value), not 4096 x 4096.
    assert len(response.content) < 400 * 400 * 24
    data = coverage(published, SMALL, f="GTiff", **{"scale-factor": "0.5"})
    assert data.status_code == 200


def test_cell_caps_depend_on_the_format(published: Published) -> None:
    # 1,080,000 cells: within the GeoTIFF cap, beyond CoverageJSON's default.
    assert coverage(published, DEM, f="GTiff").status_code == 200
    message = refusal(coverage(published, DEM, f="json"))
    assert (
        "1200 x 900 cells x 1 band(s) = 1,080,000 values, more than this server's "
        "limit of 1,048,576 for CoverageJSON (SDI_MAX_COVERAGE_JSON_CELLS)"
    ) in message
    assert "f=GTiff" in message
    # Half of it is fine as CoverageJSON.
    half = coverage(published, DEM, f="json", **{"scale-axes": "E(2)"})
    assert half.status_code == 200
    assert len(half.json()["ranges"]["elevation"]["values"]) == 600 * 900
    # 2000 x 1500 (up-sampled 1.67x): beyond the GeoTIFF and PNG cap.
    for fmt, name in (("GTiff", "GeoTIFF"), ("png", "PNG")):
        message = refusal(
            coverage(published, DEM, f=fmt, **{"scale-size": "E(2000),N(1500)"})
        )
        assert (
            f"= 3,000,000 values, more than this server's limit of 2,000,000 for "
            f"{name} (SDI_MAX_COVERAGE_CELLS)"
        ) in message


def _tile(published: Published) -> str:
    """A z14 map tile from the middle of the DEM."""
    base = f"{published.url}/collections/{DEM}/map/tiles/WebMercatorQuad"
    limits = requests.get(base, timeout=60).json()["tileMatrixSetLimits"][14]
    row = (limits["minTileRow"] + limits["maxTileRow"]) // 2
    col = (limits["minTileCol"] + limits["maxTileCol"]) // 2
    return f"{base}/14/{row}/{col}"


def test_renders_beyond_the_slots_get_503_with_retry_after(
    published: Published,
) -> None:
    limiter = published.limiter
    assert limiter.slots == 2 and limiter.queue == 1
    tile = _tile(published)
    assert requests.get(tile, timeout=60).status_code == 200
    # Take every render slot from here (the server runs in this process).
    first, second = limiter.acquire(), limiter.acquire()
    waited: dict[str, requests.Response] = {}

    def queued() -> None:
        waited["response"] = coverage(published, SMALL, f="GTiff")

    thread = threading.Thread(target=queued)
    thread.start()
    try:
        assert limiter.wait_for(waiting=1, timeout=30), "the request never queued"
        # The queue is full: refused at once, as OGC exception JSON.
        for response in (
            coverage(published, DEM, f="GTiff"),
            coverage(published, SMALL, f="json"),
            requests.get(tile, timeout=60),
        ):
            assert response.status_code == 503, response.text[:300]
            assert response.headers["Retry-After"] == str(limiter.retry_after)
            assert response.headers["Content-Type"].startswith("application/json")
            body = response.json()
            assert body["code"] == "ServiceUnavailable"
            assert "try again in" in body["description"]
        # Bad requests are still refused for what they are; nothing else waits.
        assert "positive number" in refusal(
            coverage(published, DEM, f="GTiff", **{"scale-factor": "0"})
        )
        assert coverage(published, DEM, f="html").status_code == 200
        assert requests.get(f"{published.url}/collections", timeout=60).ok
        assert limiter.waiting == 1
    finally:
        first.release()  # the queued request takes this slot
        thread.join(timeout=60)
        second.release()
    assert waited["response"].status_code == 200


def _slow_client(published: Published, path: str) -> socket.socket:
    """A connection that has sent ``GET path`` and reads slowly.

    Its small receive buffer (and the server's send buffer, at most
    net.core.wmem_max, 4 MB by default) cannot hold a 10 MB body, so the server
    is still writing it until the client reads on.
    """
    host, port = urllib.parse.urlsplit(published.url).netloc.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(60)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    return sock


def test_a_streamed_coveragejson_holds_its_slot_until_sent(
    published: Published,
) -> None:
    limiter = published.limiter
    path = f"/collections/{DEM}/coverage?f=json&scale-axes=E(2)"  # 540,000 values
    sock = _slow_client(published, path)
    with sock:
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert limiter.running == 1  # the body is still being written
        received = len(head)
        while chunk := sock.recv(1 << 16):
            received += len(chunk)
    assert received > 600 * 900 * 10
    assert limiter.wait_for(running=0, timeout=30), "the slot was not given back"
    # A client that goes away mid-body frees the slot as well.
    with _slow_client(published, path) as sock:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert limiter.running == 1
    assert limiter.wait_for(running=0, timeout=30), "the slot was not given back"


def test_a_wait_that_runs_out_is_refused() -> None:
    limiter = RenderLimiter(slots=1, wait_s=0.0, queue=1)
    with (
        limiter.slot(),
        pytest.raises(RenderBusyError, match="no render slot came free"),
    ):
        limiter.acquire()
    with limiter.slot():  # the slot came back
        assert limiter.running == 1
    assert limiter.running == 0


def test_a_busy_refusal_is_one_warning_line_without_a_traceback(
    published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    """Shedding load is not a server failure: every refused render used to log
    an ERROR with a 20-line traceback, so a flood of requests flooded the log."""
    limiter = published.limiter
    first, second = limiter.acquire(), limiter.acquire()
    waited: dict[str, requests.Response] = {}
    thread = threading.Thread(
        target=lambda: waited.update(r=coverage(published, SMALL, f="GTiff"))
    )
    thread.start()
    try:
        assert limiter.wait_for(waiting=1, timeout=30), "the request never queued"
        with caplog.at_level(logging.INFO, logger="sdi.api.error_log"):
            assert coverage(published, DEM, f="GTiff").status_code == 503
        records = [r for r in caplog.records if r.name == "sdi.api.error_log"]
        assert [r.levelno for r in records] == [logging.WARNING], records
        assert records[0].exc_info is None
        assert "503 ServiceUnavailable" in records[0].getMessage()
    finally:
        first.release()
        thread.join(timeout=60)
        second.release()
    assert waited["r"].status_code == 200
