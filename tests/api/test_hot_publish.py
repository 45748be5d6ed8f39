"""Publishing under load: every change shows in every worker within 2 s, no 5xx.

gunicorn runs several worker processes; client threads keep querying the
landing page, the collection list, the catalogue, collections, items and
single features while layers are published, re-versioned, rolled back,
retitled and withdrawn. Each change must be visible on every worker within
2 seconds, and no request in the whole run may fail with a 5xx or a broken
connection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from sdi import registry
from sdi.settings import Settings
from tests.api.gunicorn import gunicorn_api
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer

STEADY = "landsd_buildings"
FLIPPING = "landsd_flipping"
VISIBLE_WITHIN_S = 2.0


class Load:
    """Client threads hammering the API; they record every status they see."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True)
            for i in range(threads)
        ]

    def _paths(self) -> list[str]:
        return [
            "/",
            "/collections",
            "/collections/catalog/items",
            f"/collections/{STEADY}/items?limit=5",
            f"/collections/{FLIPPING}",
            f"/collections/{FLIPPING}/items?limit=20",
            f"/collections/{FLIPPING}/items/1",
            f"/collections/{STEADY}/queryables",
        ]

    def _run(self, index: int) -> None:
        paths = self._paths()
        session = requests.Session()
        i = index
        while not self._stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                r = session.get(self.base + path, params={"f": "json"}, timeout=30)
                status = r.status_code
                if status >= 500:
                    self._fail(f"{path}: {status} {r.text[:200]}")
            except requests.RequestException as exc:
                status = 0
                self._fail(f"{path}: {exc}")
            with self._lock:
                self.statuses[status] += 1

    def _fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def collection_ids(base: str) -> set[str]:
    r = requests.get(f"{base}/collections", params={"f": "json"}, timeout=30)
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["collections"]}


def until_everywhere(check: Callable[[], bool], what: str) -> float:
    """Seconds until ``check`` holds on 12 requests in a row (all workers)."""
    started = time.monotonic()
    while True:
        if all(check() for _ in range(12)):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < VISIBLE_WITHIN_S + 1.0, f"{what}: not visible after {elapsed}"
        time.sleep(0.05)


def items_count(base: str, slug: str) -> int | None:
    r = requests.get(
        f"{base}/collections/{slug}/items", params={"f": "json"}, timeout=30
    )
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return int(r.json()["numberMatched"])


def title(base: str, slug: str) -> str | None:
    r = requests.get(f"{base}/collections/{slug}", params={"f": "json"}, timeout=30)
    return str(r.json()["title"]) if r.status_code == 200 else None


def test_changes_show_up_under_load_without_errors(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    buildings_layer(db, STEADY, 25)
    with (
        gunicorn_api(settings, tmp_path, workers=3, threads=2) as base,
        Load(base) as load,
    ):
        time.sleep(0.5)
        timings: dict[str, float] = {}

        buildings_layer(db, FLIPPING, 10)  # a new layer, published
        timings["publish"] = until_everywhere(
            lambda: items_count(base, FLIPPING) == 10, "new layer"
        )
        add_version(db, FLIPPING, buildings(range(14)))
        timings["new version"] = until_everywhere(
            lambda: items_count(base, FLIPPING) == 14, "new version"
        )
        registry.publish(db, FLIPPING, 1)
        timings["rollback"] = until_everywhere(
            lambda: items_count(base, FLIPPING) == 10, "rollback"
        )
        registry.update_layer(db, FLIPPING, {"title_en": "Flipped buildings"})
        timings["metadata"] = until_everywhere(
            lambda: title(base, FLIPPING) == "Flipped buildings", "metadata"
        )
        registry.unpublish(db, FLIPPING)
        timings["unpublish"] = until_everywhere(
            lambda: (
                FLIPPING not in collection_ids(base)
                and items_count(base, FLIPPING) is None
            ),
            "unpublish",
        )
        registry.publish(db, FLIPPING, 2)
        timings["republish"] = until_everywhere(
            lambda: items_count(base, FLIPPING) == 14, "republish"
        )
        time.sleep(0.5)

    assert not load.failures, load.failures[:5]
    assert sum(load.statuses.values()) > 100, load.statuses
    assert set(load.statuses) <= {200, 404}, load.statuses
    for what, seconds in timings.items():
        assert seconds <= VISIBLE_WITHIN_S, (what, seconds)
