"""The publication generation: a counter bumped whenever what the API serves changes.

Running API workers compare it with the generation they loaded and rebuild
their configuration when it moved; ``NOTIFY sdi_publication`` wakes listeners.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

__all__ = ["CHANNEL", "bump_generation", "current_generation"]

CHANNEL = "sdi_publication"
_BUMP = """
UPDATE sdi.publication SET generation = generation + 1, changed_at = now()
RETURNING generation
"""
_CURRENT = "SELECT generation FROM sdi.publication"


def bump_generation(conn: Connection[Any]) -> int:
    """Advance the generation in the caller's transaction; returns the new value."""
    row = conn.execute(_BUMP).fetchone()
    assert row is not None
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(row[0])))
    return int(row[0])


def current_generation(conn: Connection[Any]) -> int:
    """The generation now committed."""
    row = conn.execute(_CURRENT).fetchone()
    return int(row[0]) if row else 0
