"""Fixtures for the job tests: an agency, an editor, layers, spooled uploads."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Thread
from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.jobs import Worker, spool_path
from sdi.registry.models import Agency, Layer, User
from sdi.settings import Settings

Conn = psycopg.Connection[Any]


@pytest.fixture
def agency(conn: Conn) -> Agency:
    return registry.create_agency(conn, "landsd", "Lands Department", "地政總署")


@pytest.fixture
def editor(conn: Conn, agency: Agency) -> User:
    return registry.create_user(
        conn,
        "editor@landsd.gov.hk",
        "a long enough password",
        "agency_editor",
        agency=agency,
    )


@pytest.fixture
def make_layer(conn: Conn, agency: Agency) -> Callable[..., Layer]:
    licence = registry.get_licence(conn, "hk-csdi")

    def make(slug: str = "landsd_places", **extra: Any) -> Layer:
        return registry.create_layer(
            conn,
            agency,
            registry.LayerInput(
                slug=slug, title_en="Places", licence_id=licence.id, **extra
            ),
        )

    return make


def spool(settings: Settings, source: Path, name: str | None = None) -> Path:
    """Copy ``source`` into the spool, as the admin app's upload would."""
    target = spool_path(settings, name or source.name)
    shutil.copyfile(source, target)
    return target


def spooled(settings: Settings) -> list[Path]:
    """Everything left in the spool directory."""
    root = settings.upload_dir / "spool"
    return sorted(root.rglob("*")) if root.exists() else []


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Run ``worker`` in a thread for the duration of the block."""
    thread = Thread(target=worker.run, name=worker.name, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


def fast_worker(settings: Settings, name: str | None = None, **options: Any) -> Worker:
    """A worker that polls and reports often (tests wait less)."""
    defaults: dict[str, Any] = {
        "poll_interval": 0.2,
        "progress_interval": 0.05,
        "heartbeat_interval": 0.2,
    }
    return Worker(settings, name=name, **(defaults | options))
