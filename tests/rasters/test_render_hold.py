"""A render slot is a lease with a bounded lifetime (``SDI_RENDER_HOLD_S``).

A streamed CoverageJSON body keeps its slot while the server sends it; a few
clients that asked for one and never read held every slot for as long as
their connections stayed open, and every coverage and map render answered 503
(issue 9, red team). Now a lease held past its lifetime is reclaimed.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sdi import registry
from sdi.api.render_limit import Lease, RenderBusyError, RenderLimiter, render_limiter
from sdi.ingest.raster import ingest_raster
from sdi.settings import Settings, load_settings
from tests.api.conftest import Server
from tests.api.layerdata import Conn
from tests.conftest import free_port
from tests.rasters.conftest import raster_layer
from tests.rasters.files import write_dem

DEM = "landsd_dem"  # 1200 x 900
LOGGER = "sdi.api.render_limit"


class Clock:
    """A monotonic clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reclaims(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_a_lease_held_past_its_lifetime_is_reclaimed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = RenderLimiter(slots=1, wait_s=0.0, hold_s=30.0, clock=clock)
    stuck = limiter.acquire()
    clock.now = 29.9
    with pytest.raises(RenderBusyError, match="no render slot came free"):
        limiter.acquire()
    assert limiter.running == 1 and not stuck.reclaimed
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        clock.now = 30.0
        assert limiter.running == 0  # reclaimed at its expiry
        assert stuck.reclaimed
        fresh = limiter.acquire()  # a new request takes the slot
        clock.now = 45.0
        assert limiter.running == 1
    [record] = reclaims(caplog)  # once, not on every look
    assert record.levelno == logging.WARNING
    assert "render slot was reclaimed after 30.0 s" in record.getMessage()
    assert "SDI_RENDER_HOLD_S=30" in record.getMessage()
    fresh.release()
    assert limiter.running == 0 and not fresh.reclaimed


def test_the_late_release_of_a_reclaimed_lease_is_a_no_op(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = RenderLimiter(slots=1, wait_s=0.0, hold_s=30.0, clock=clock)
    stuck = limiter.acquire()
    clock.now = 31.0
    fresh = limiter.acquire()
    assert len(reclaims(caplog)) == 1
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        stuck.release()  # the stuck body is finally closed
        stuck.release()
        assert reclaims(caplog) == []  # logged once, when it was reclaimed
    # It did not free the slot that another request holds now ...
    assert limiter.running == 1
    with pytest.raises(RenderBusyError):
        limiter.acquire()
    fresh.release()
    fresh.release()
    # ... and the count never went below zero: one slot, not two or three.
    assert limiter.running == 0
    with limiter.slot():
        with pytest.raises(RenderBusyError):
            limiter.acquire()
        assert limiter.running == 1
    assert limiter.running == 0


def test_a_waiting_request_wakes_when_the_lease_expires() -> None:
    clock = Clock()
    # A long wait: only the expiry can hand the waiter the slot in time.
    limiter = RenderLimiter(slots=1, wait_s=600.0, hold_s=0.2, clock=clock)
    stuck = limiter.acquire()
    got: list[Lease] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire()), daemon=True)
    waiter.start()
    # The clock stands still, so the lease cannot expire before the request waits.
    assert limiter.wait_for(waiting=1, timeout=30), "the request never queued"
    clock.now = 0.2  # the lease expires; nothing releases it or notifies anyone
    waiter.join(timeout=30)
    assert not waiter.is_alive(), "the wait slept past the lease's expiry"
    assert stuck.reclaimed and len(got) == 1
    assert limiter.running == 1 and limiter.waiting == 0
    got[0].release()
    assert limiter.running == 0


def test_the_hold_time_is_a_setting() -> None:
    assert load_settings({}).render_hold_s == 30.0
    assert load_settings({"SDI_RENDER_HOLD_S": "2.5"}).render_hold_s == 2.5
    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match="SDI_RENDER_HOLD_S must be above 0"):
            load_settings({"SDI_RENDER_HOLD_S": bad})
    limiter = RenderLimiter.from_settings(Settings(render_hold_s=2.5))
    assert limiter.hold_s == 2.5


#: One render slot, held at most 1 s; a request waits up to 30 s for it.
HOLD_S = 1.0
WAIT_S = 30.0


@pytest.fixture
def api_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """One render slot with a short hold and a long wait."""
    assert settings.database_url is not None
    monkeypatch.setenv("SDI_DATABASE_URL", settings.database_url)
    return settings.with_(
        port=free_port(), max_renders=1, render_hold_s=HOLD_S, render_wait_s=WAIT_S
    )


@pytest.fixture
def published(db: Conn, server: Server, tmp_path: Path) -> Iterator[Server]:
    """A published 1200 x 900 DEM."""
    raster_layer(db, DEM)
    source = write_dem(tmp_path / "dem.tif", 1200, 900)
    version = ingest_raster(db, server.settings, source, layer=DEM)
    registry.publish(db, DEM, version.number)
    yield server
    limiter = render_limiter(server.app)
    assert limiter.wait_for(running=0, waiting=0, timeout=30), "a render slot leaked"


def test_a_client_that_never_reads_loses_its_render_slot(
    published: Server, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = render_limiter(published.app)
    assert limiter.slots == 1 and limiter.hold_s == HOLD_S
    host, port = urllib.parse.urlsplit(published.url).netloc.split(":")
    # ~10 MB of CoverageJSON to a receive buffer of a few KB: the server is
    # stuck writing the body for as long as this connection stays open.
    path = f"/collections/{DEM}/coverage?f=json&scale-axes=E(2)"
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(60)
        stalled.connect((host, int(port)))
        stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert stalled.recv(1024).startswith(b"HTTP/1.1 200")  # and never reads on
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            # Queued behind the stalled body (or after it), served once its
            # lease expires; it used to wait WAIT_S and get a 503.
            response = requests.get(
                f"{published.url}/collections/{DEM}/coverage",
                params={"f": "json", "scale-axes": "E(4),N(4)"},
                timeout=60,
            )
            assert response.status_code == 200, response.text[:300]
            values = response.json()["ranges"]["elevation"]["values"]
            assert len(values) == 300 * 225
        # The stalled body's lease was reclaimed (not released: it is unsent).
        [record] = reclaims(caplog)
        assert record.levelno == logging.WARNING
        assert "render slot was reclaimed after" in record.getMessage()
        held = float(record.getMessage().split("after ")[1].split(" s")[0])
        assert HOLD_S <= held < WAIT_S
    # Closing the stalled connection releases the reclaimed lease late: a
    # no-op, so the count stays right (the fixture checks it comes back to 0).
