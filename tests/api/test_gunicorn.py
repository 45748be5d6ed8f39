"""Several gunicorn worker processes all follow a publish and a rollback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests

from sdi import registry
from sdi.settings import Settings
from tests.api.gunicorn import gunicorn_api
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer

SLUG = "landsd_buildings"


def test_all_workers_follow_publication(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    buildings_layer(db, SLUG, 25)
    with gunicorn_api(settings, tmp_path) as base:
        check_workers_follow(db, f"{base}/collections/{SLUG}/items")


def check_workers_follow(db: Conn, url: str) -> None:
    """Every worker answers from the newly published version within 2 s."""

    def matched() -> int:
        r = requests.get(url, params={"limit": 1, "BLDG_ID": "B0030"}, timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["numberMatched"])

    # warm every worker on version 1 first
    assert {matched() for _ in range(30)} == {0}

    add_version(db, SLUG, buildings(range(31)))
    published = time.monotonic()
    until_every_worker(matched, 1, published)
    assert {matched() for _ in range(30)} == {1}, "a worker still serves v1"
    assert time.monotonic() - published < 5

    registry.publish(db, SLUG, 1)
    until_every_worker(matched, 0, time.monotonic())
    assert {matched() for _ in range(30)} == {0}, "a worker still serves v2"


def until_every_worker(matched: Callable[[], int], value: int, since: float) -> None:
    """Until 30 requests in a row (every worker) answer ``value``, or 5 s passed."""
    while time.monotonic() - since < 5:
        if all(matched() == value for _ in range(30)):
            return
        time.sleep(0.05)
