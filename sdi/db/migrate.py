"""Ordered SQL migrations with a recorded version.

Files ``sdi/db/migrations/NNNN_name.sql`` are applied in order, each in the
same transaction as its record in ``sdi.schema_migrations``, under an advisory
lock so that concurrent starts do not race. Re-running is a no-op.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from psycopg import Connection
from psycopg.rows import TupleRow

__all__ = ["Migration", "applied_versions", "available", "migrate"]

LOGGER = logging.getLogger(__name__)
_LOCK_KEY = 0x5D1_0001
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """All migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("sdi.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(
                Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    return sorted(found, key=lambda m: m.version)


def applied_versions(conn: Connection[TupleRow]) -> set[int]:
    """Versions already applied to the database of ``conn``."""
    exists = conn.execute("SELECT to_regclass('sdi.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM sdi.schema_migrations")}


def migrate(conn: Connection[TupleRow]) -> list[Migration]:
    """Apply pending migrations; returns those applied."""
    applied: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS sdi")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sdi.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = applied_versions(conn)
        for migration in available():
            if migration.version in done:
                continue
            LOGGER.info("applying migration %04d_%s", migration.version, migration.name)
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO sdi.schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration)
    return applied
