"""The pygeoapi ``API`` object of the current publication, swapped when it changes.

Every process holds one :class:`LiveApi`. On a request it asks the registry
for the publication generation, at most once per ``interval`` seconds (one
primary-key read), and when the generation has moved builds a new
configuration, OpenAPI document and ``API`` object and swaps them in. Requests
already running finish on the old object; other threads keep serving the old
one while the new one is built. So every gunicorn worker follows a publish or
rollback within about ``interval`` seconds plus the build, without restarting.

Nothing connects before the first request: building an app is free of side
effects, and a worker forked from a preloaded master opens its own connection.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
from pygeoapi import l10n
from pygeoapi.api import API

from sdi.errors import SdiError
from sdi.publish import build_config, build_openapi
from sdi.registry import current_generation
from sdi.settings import Settings

__all__ = ["RELOAD_INTERVAL_S", "ApiUnavailableError", "LiveApi"]

LOGGER = logging.getLogger(__name__)

#: How often a process checks the publication generation.
RELOAD_INTERVAL_S = 0.5
#: After a failed rebuild, wait this long before the next try.
_RETRY_AFTER_FAILURE_S = 5.0
_CONNECT_TIMEOUT_S = 5


class ApiUnavailableError(SdiError):
    """The API has no configuration yet because the database is unreachable."""

    status = 503
    code = "ServiceUnavailable"


class LiveApi:
    """Holds the current pygeoapi ``API`` and replaces it when a publication moves."""

    def __init__(self, settings: Settings, *, interval: float = RELOAD_INTERVAL_S):
        """Remember the settings; connect later, on the first request."""
        if not settings.database_url:
            raise SdiError("The API needs a database URL (SDI_DATABASE_URL).")
        self._settings = settings
        self._url: str = settings.database_url
        self._interval = interval
        self._lock = threading.Lock()
        self._api: API | None = None
        self._generation: int | None = None
        self._next_check = 0.0
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def generation(self) -> int | None:
        """The publication generation the current ``API`` was built from."""
        return self._generation

    def peek(self) -> API | None:
        """The current ``API`` without checking for a newer one (may be None)."""
        return self._api

    def current(self) -> API:
        """The ``API`` to serve this request with, rebuilt first if it is stale."""
        api = self._api
        if api is not None and time.monotonic() < self._next_check:
            return api
        # Only one thread checks; the others serve what there is meanwhile
        # (before the first build there is nothing, so they wait).
        if not self._lock.acquire(blocking=api is None):
            assert api is not None
            return api
        try:
            if self._api is None or time.monotonic() >= self._next_check:
                self._refresh()
        finally:
            self._lock.release()
        assert self._api is not None
        return self._api

    def close(self) -> None:
        """Close the watcher's database connection."""
        with self._lock:
            self._drop_connection()

    # -- internals ------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=_CONNECT_TIMEOUT_S,
                application_name="sdi-api",
            )
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _refresh(self) -> None:
        started = time.monotonic()
        try:
            conn = self._connection()
            # Read the generation before the configuration: a publish racing
            # with the build is then seen again at the next check.
            generation = current_generation(conn)
            if self._api is None or generation != self._generation:
                api = self._build(conn)
                self._api, self._generation = api, generation
                # pygeoapi caches the translated configuration for HTML pages
                # per language; it belongs to the old API.
                l10n._cfg_cache.clear()
                LOGGER.info(
                    "serving publication generation %s (%d collections, %.0f ms)",
                    generation,
                    len(api.config.get("resources", {})),
                    (time.monotonic() - started) * 1000,
                )
            self._next_check = time.monotonic() + self._interval
        except psycopg.Error as exc:
            self._drop_connection()
            self._next_check = time.monotonic() + self._interval
            if self._api is None:
                raise ApiUnavailableError(
                    "The database is not reachable; try again shortly."
                ) from exc
            LOGGER.warning("cannot check the publication generation: %s", exc)
        except Exception:
            self._next_check = time.monotonic() + _RETRY_AFTER_FAILURE_S
            if self._api is None:
                raise
            LOGGER.exception("rebuilding the API failed; still serving the old one")

    def _build(self, conn: psycopg.Connection[Any]) -> API:
        config = build_config(conn, self._settings)
        openapi = build_openapi(config)
        return API(config, openapi)
