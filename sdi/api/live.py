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

Restricted layers are in the full configuration, but the ``API`` served to a
request without a key leaves them out. A request whose API key opens some of
them gets a *view*: an ``API`` over the public collections plus those, built
on first use and kept (per generation, per set of granted layers) until the
generation moves. Key checks are cached for :data:`KEY_CACHE_S` seconds, so a
revoked key stops working within that time in every worker.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import psycopg
from pygeoapi.api import API

from sdi.errors import SdiError
from sdi.providers.pool import get_pool
from sdi.publish import build_config, build_openapi, restricted_layers
from sdi.registry import current_generation
from sdi.registry.apikeys import verify
from sdi.registry.snapshot import registry_snapshot
from sdi.settings import Settings

__all__ = [
    "KEY_CACHE_S",
    "RELOAD_INTERVAL_S",
    "ApiUnavailableError",
    "LiveApi",
    "config_view",
]

LOGGER = logging.getLogger(__name__)

#: How often a process checks the publication generation.
RELOAD_INTERVAL_S = 0.5
#: After a failed rebuild, wait this long before the next try.
_RETRY_AFTER_FAILURE_S = 5.0
#: How long a verified (or refused) API key is trusted without asking again.
KEY_CACHE_S = 1.0
#: Views (API objects for sets of granted layers) kept per process.
_MAX_VIEWS = 32
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
        self._config: dict[str, Any] | None = None
        #: Restricted collection id -> layer id, in the current generation.
        self._restricted: dict[str, int] = {}
        self._views: OrderedDict[frozenset[str], API] = OrderedDict()
        self._views_lock = threading.Lock()
        self._keys: dict[str, tuple[float, frozenset[int] | None]] = {}
        self._keys_lock = threading.Lock()

    @property
    def generation(self) -> int | None:
        """The publication generation the current ``API`` was built from."""
        return self._generation

    def peek(self) -> API | None:
        """The current ``API`` without checking for a newer one (may be None)."""
        return self._api

    def current(self, grants: frozenset[str] = frozenset()) -> API:
        """The ``API`` to serve a request with, rebuilt first if it is stale.

        ``grants`` are the restricted collections the request's API key opens.
        """
        public = self._public()
        if not grants:
            return public
        with self._views_lock:
            visible = frozenset(grants) & frozenset(self._restricted)
            config = self._config
            if not visible or config is None:
                return public
            view = self._views.get(visible)
            if view is not None:
                self._views.move_to_end(visible)
                return view
        hidden = set(self._restricted) - visible
        view_config = config_view(config, hidden)
        view = API(view_config, build_openapi(view_config))
        with self._views_lock:
            if self._config is config:
                self._views[visible] = view
                while len(self._views) > _MAX_VIEWS:
                    self._views.popitem(last=False)
        return view

    def key_grants(self, key: str) -> frozenset[str] | None:
        """Restricted collection ids ``key`` opens; None if the key is not valid."""
        self._public()  # the restricted layers of the current generation
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        with self._keys_lock:
            cached = self._keys.get(digest)
        if cached is None or cached[0] <= now:
            layer_ids: frozenset[int] | None = None
            # The providers' pool: a key check is one short query, not a
            # new connection.
            with get_pool(self._url).connection(timeout=_CONNECT_TIMEOUT_S) as conn:
                found = verify(conn, key)
            if found is not None:
                layer_ids = frozenset(found[1])
            with self._keys_lock:
                if len(self._keys) > 1024:
                    self._keys.clear()
                self._keys[digest] = (now + KEY_CACHE_S, layer_ids)
            cached = (now, layer_ids)
        ids = cached[1]
        if ids is None:
            return None
        return frozenset(slug for slug, lid in self._restricted.items() if lid in ids)

    def _public(self) -> API:
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
            if self._api is None or current_generation(conn) != self._generation:
                generation, config, restricted = self._build_config(conn)
                public = config_view(config, set(restricted))
                api = API(public, build_openapi(public))
                with self._views_lock:
                    self._config, self._restricted = config, restricted
                    self._views.clear()
                    self._api, self._generation = api, generation
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

    def _build_config(
        self, conn: psycopg.Connection[Any]
    ) -> tuple[int, dict[str, Any], dict[str, int]]:
        # One snapshot, so the generation, the configuration and the
        # restricted list describe the same registry state (a publish
        # committed meanwhile moves the generation: seen at the next check).
        with registry_snapshot(conn):
            generation = current_generation(conn)
            config = build_config(conn, self._settings)
            restricted = restricted_layers(conn)
        served = {s: i for s, i in restricted.items() if s in config["resources"]}
        return generation, config, served


def config_view(config: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """``config`` without the collections in ``hidden`` (nor their catalogue records).

    Resources are shared with ``config`` except the catalogue's, which is copied
    before its records are filtered.
    """
    view = dict(config)
    resources: dict[str, Any] = {}
    for name, resource in config.get("resources", {}).items():
        if name in hidden:
            continue
        if hidden and _has_records(resource):
            resource = copy.deepcopy(resource)
            for provider in resource["providers"]:
                if _records_of(provider) is not None:
                    provider["data"]["records"] = [
                        r
                        for r in provider["data"]["records"]
                        if r.get("id") not in hidden
                    ]
        resources[name] = resource
    view["resources"] = resources
    return view


def _records_of(provider: dict[str, Any]) -> list[Any] | None:
    data = provider.get("data")
    if provider.get("type") != "record" or not isinstance(data, dict):
        return None
    records = data.get("records")
    return records if isinstance(records, list) else None


def _has_records(resource: dict[str, Any]) -> bool:
    return any(_records_of(p) is not None for p in resource.get("providers") or [])
