"""Connection pools and one-off connections, all psycopg 3."""

from __future__ import annotations

from psycopg import Connection, connect
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

__all__ = ["make_pool", "open_connection"]


def _configure(conn: Connection[TupleRow]) -> None:
    conn.execute("SET application_name = 'sdi'")
    if not conn.autocommit:
        conn.commit()


def make_pool(
    url: str, *, max_size: int = 8, min_size: int = 1, autocommit: bool = True
) -> ConnectionPool:
    """An opened pool of (by default autocommit) connections to ``url``."""
    pool: ConnectionPool = ConnectionPool(
        url,
        kwargs={"autocommit": autocommit},
        min_size=min_size,
        max_size=max_size,
        configure=_configure,
        open=False,
        name="sdi",
    )
    pool.open(wait=True, timeout=30)
    return pool


def open_connection(url: str, *, autocommit: bool = False) -> Connection[TupleRow]:
    """A single connection (CLI commands, migrations, tests)."""
    return connect(url, autocommit=autocommit)
