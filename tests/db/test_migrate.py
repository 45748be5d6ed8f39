"""Migrations apply once, record their version and are idempotent."""

from __future__ import annotations

import psycopg

from sdi.db import migrate
from sdi.db.migrate import applied_versions, available


def test_template_has_every_migration(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    assert applied_versions(conn) == {m.version for m in available()}


def test_rerun_is_a_noop(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert migrate(conn) == []
    row = conn.execute("SELECT count(*) FROM sdi.licences").fetchone()
    assert row is not None and row[0] >= 5


def test_postgis_is_installed(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT postgis_lib_version()").fetchone()
    assert row is not None and str(row[0]).startswith("3.")


def test_licences_include_the_required_terms(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    codes = {r[0] for r in conn.execute("SELECT code FROM sdi.licences")}
    assert {"hk-csdi", "cc-by-4.0", "odbl-1.0", "restricted"} <= codes
