"""A configuration build reads the registry in one snapshot (never a mix of states).

The build runs on a connection whose cursors call a hook before each
statement: before statement ``k`` another connection withdraws the layer's
published version 2 (which moves the published pointer back to 1) and
commits. For every ``k`` the build must describe either the registry before
the withdrawal (version 2 served, nothing withdrawn) or after it (version 1
served, 2 withdrawn), never a layer that points at a version it cannot find.
Deterministic: the interleaving is driven by statement count, not by timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from sdi import registry
from sdi.api.live import LiveApi
from sdi.publish import build_config, write_collections
from sdi.registry.snapshot import SnapshotError, registry_snapshot
from sdi.settings import Settings
from tests.api.layerdata import Conn, add_version, buildings, buildings_layer, connect

OLD = {"version": 2, "versions": [1, 2], "withdrawn": []}
NEW = {"version": 1, "versions": [1], "withdrawn": [2]}


class _Hooks:
    """Calls ``before(n)`` before the connection's n-th statement (from 1)."""

    def __init__(self) -> None:
        self.count = 0
        self.before: Callable[[int], None] | None = None


class HookedCursor(psycopg.Cursor[Any]):
    """A real cursor that lets the test act between the statements of a build."""

    hooks: _Hooks

    def execute(self, *args: Any, **kwargs: Any) -> HookedCursor:  # type: ignore[override]
        hooks = self.hooks
        hooks.count += 1
        if hooks.before is not None:
            hooks.before(hooks.count)
        super().execute(*args, **kwargs)
        return self


def hooked_connection(db_url: str) -> tuple[Conn, _Hooks]:
    """An autocommit connection (as the API and CLI use) with a statement hook."""
    hooks = _Hooks()
    cursor_class = type("Cursor", (HookedCursor,), {"hooks": hooks})
    conn = psycopg.connect(db_url, autocommit=True, cursor_factory=cursor_class)
    return conn, hooks


@pytest.fixture
def other(db_url: str) -> Iterator[Conn]:
    """The concurrent session that withdraws a version."""
    with connect(db_url) as conn:
        yield conn


def _two_versions(conn: Conn, slug: str) -> None:
    """``slug`` with versions 1 and 2, version 2 published."""
    buildings_layer(conn, slug, 5)
    add_version(conn, slug, buildings(range(7)))


def _state(provider_data: dict[str, Any] | None) -> dict[str, Any] | None:
    if provider_data is None:
        return None
    return {
        "version": provider_data["version"],
        "versions": [v["number"] for v in provider_data["versions"]],
        "withdrawn": [w["number"] for w in provider_data["withdrawn"]],
    }


def _from_config(config: dict[str, Any], slug: str) -> dict[str, Any] | None:
    resource = config["resources"].get(slug)
    return _state(resource["providers"][0]["data"] if resource else None)


def _from_files(settings: Settings, slug: str) -> dict[str, Any] | None:
    path: Path = settings.collections_dir / f"{slug}.yml"
    if not path.exists():
        return None
    return _state(yaml.safe_load(path.read_text())[slug]["providers"][0]["data"])


def _race_every_statement(
    db_url: str,
    other: Conn,
    build: Callable[[Conn, str], dict[str, Any] | None],
) -> list[int]:
    """Withdraw before each statement of ``build`` in turn; the states seen.

    Returns, per statement index, which state the build saw (0 old, 1 new).
    """
    seen: list[int] = []
    conn, hooks = hooked_connection(db_url)
    with conn:
        for k in range(1, 60):
            slug = f"landsd_race_{k}"
            _two_versions(other, slug)
            fired: list[int] = []

            def withdraw(
                n: int, k: int = k, slug: str = slug, fired: list[int] = fired
            ) -> None:
                if n == k and not fired:
                    fired.append(n)
                    registry.withdraw_version(
                        other, slug, 2, "published in error", by=None
                    )

            hooks.count, hooks.before = 0, withdraw
            state = build(conn, slug)
            hooks.before = None
            if not fired:  # past the build's last statement: every one was raced
                return seen
            assert state in (OLD, NEW), f"statement {k}: the build saw {state}"
            seen.append(0 if state == OLD else 1)
            # Only one race layer published at a time: the same statements
            # in the same order for every k.
            registry.unpublish(other, slug)
    raise AssertionError("the build never ended")


def test_build_config_sees_one_registry_state(
    db_url: str, other: Conn, settings: Settings
) -> None:
    seen = _race_every_statement(
        db_url,
        other,
        lambda conn, slug: _from_config(build_config(conn, settings), slug),
    )
    # Raced before its first read the build sees the new state; raced after
    # it, the old one throughout.
    assert seen[-1] == 0 and 1 in seen, seen
    assert seen == sorted(seen, reverse=True), seen


def test_written_collections_see_one_registry_state(
    db_url: str, other: Conn, settings: Settings
) -> None:
    """``sdi publish``, ``sdi up`` and ``sdi demo`` write the files this way."""

    def build(conn: Conn, slug: str) -> dict[str, Any] | None:
        write_collections(conn, settings)
        return _from_files(settings, slug)

    seen = _race_every_statement(db_url, other, build)
    assert seen[-1] == 0 and 1 in seen, seen


def test_the_api_reload_sees_one_registry_state(
    db_url: str, other: Conn, settings: Settings
) -> None:
    """The API's reload: its generation and configuration are one state too."""

    def build(conn: Conn, slug: str) -> dict[str, Any] | None:
        class Live(LiveApi):
            def _connection(self) -> Conn:
                return conn

        before = registry.current_generation(other)
        live = Live(settings)
        state = _from_config(live.current().config, slug)
        # The generation is the state's: the old state under the new
        # generation would never be rebuilt.
        expected = before if state == OLD else registry.current_generation(other)
        assert live.generation == expected, (state, live.generation, before)
        return state

    seen = _race_every_statement(db_url, other, build)
    assert seen[-1] == 0 and 1 in seen, seen


def test_a_snapshot_cannot_start_inside_a_read_committed_transaction(
    db_url: str,
) -> None:
    with psycopg.connect(db_url) as conn:  # not autocommit: a transaction opens
        conn.execute("SELECT 1")
        with pytest.raises(SnapshotError), registry_snapshot(conn):
            pass


def test_a_snapshot_joins_a_repeatable_read_transaction(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT 1")
        with registry_snapshot(conn) as same:
            assert same is conn
