"""Process-wide connection pools for the providers, one per database URL.

pygeoapi builds a provider object for every request, so providers must not
own connections: they borrow them from a pool kept here for the life of the
process. Pools are created lazily (never at import time) and keyed by process
id as well, so a pool is never shared across a ``fork`` (gunicorn workers).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool
from pygeoapi.provider.base import ProviderConnectionError

from sdi.settings import load_settings

__all__ = ["DATABASE_URL_ENV", "close_pools", "database_url", "get_pool"]

LOGGER = logging.getLogger(__name__)

#: The variable ``sdi serve`` sets to the resolved database URL. The URL is
#: never written into configuration files.
DATABASE_URL_ENV = "SDI_DATABASE_URL"

_POOLS: dict[tuple[int, str], ConnectionPool[Connection[Any]]] = {}
_LOCK = threading.Lock()


def database_url() -> str:
    """The database the providers read, from ``SDI_DATABASE_URL``."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        message = (
            f"{DATABASE_URL_ENV} is not set: start the API with `sdi serve`, "
            "which sets it."
        )
        LOGGER.error(message)
        raise ProviderConnectionError(message)
    return url


def _configure(conn: Connection[Any]) -> None:
    """Set a new connection up for many small concurrent queries.

    Parallel workers take longer to start than a page takes to read, and JIT
    compiles for longer than a capped count runs: with many clients on few
    cores both only cost. psycopg prepares a statement run five times, after
    which PostgreSQL may switch to a generic plan that cannot see the bbox
    values (an index order scan of the whole table where the spatial index
    finds the page in a millisecond): plans stay custom.
    """
    conn.execute(
        "SET application_name = 'sdi-api'; SET jit = off; "
        "SET max_parallel_workers_per_gather = 0; "
        "SET plan_cache_mode = force_custom_plan"
    )


def get_pool(url: str | None = None) -> ConnectionPool[Connection[Any]]:
    """The pool for ``url`` (default: ``SDI_DATABASE_URL``), opened on first use."""
    url = url or database_url()
    key = (os.getpid(), url)
    pool = _POOLS.get(key)
    if pool is not None:
        return pool
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            max_size = max(1, load_settings().pool_max)
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                kwargs={"autocommit": True},
                configure=_configure,
                open=False,
                name="sdi-providers",
            )
            pool.open(wait=False)
            if not _POOLS:
                # Close while threads can still be joined: a pool left to
                # interpreter teardown makes gunicorn workers hang on exit.
                atexit.register(close_pools)
            _POOLS[key] = pool
            LOGGER.debug("opened provider pool (max %s connections)", max_size)
    return pool


def close_pools() -> None:
    """Close this process's pools (tests, shutdown)."""
    with _LOCK:
        pid = os.getpid()
        for key in [k for k in _POOLS if k[0] == pid]:
            _POOLS.pop(key).close()
