"""pygeoapi's translated-configuration cache, kept per ``API`` object.

pygeoapi renders HTML with ``l10n.translate_struct(config, locale, True)``,
which caches the translated configuration in the module-level dict
``pygeoapi.l10n._cfg_cache`` keyed by locale only. sdi serves several
configurations at once (the public one and the views of API keys, which
hold restricted collections), so a page rendered for one must never be
built from another's cached copy. :func:`install` replaces that dict with a
mapping scoped to the ``API`` object of the running request (set by
:func:`sdi.api.runtime.execute` through :func:`use`), leaving pygeoapi's
code untouched.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from typing import Any

from pygeoapi import l10n
from pygeoapi.api import API

__all__ = ["install", "use"]

_CURRENT: contextvars.ContextVar[API | None] = contextvars.ContextVar(
    "sdi_current_api", default=None
)


class _ScopedCache(dict[Any, Any]):
    """A dict whose entries belong to the ``API`` of the current request."""

    def __init__(self) -> None:
        super().__init__()
        self._scopes: weakref.WeakKeyDictionary[API, dict[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _scope(self) -> dict[Any, Any] | None:
        api = _CURRENT.get()
        if api is None:
            return None
        with self._lock:
            scope = self._scopes.get(api)
            if scope is None:
                scope = self._scopes[api] = {}
        return scope

    def get(self, key: Any, default: Any = None) -> Any:
        scope = self._scope()
        return default if scope is None else scope.get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        scope = self._scope()
        if scope is not None:  # outside a request: do not cache at all
            scope[key] = value

    def clear(self) -> None:
        with self._lock:
            self._scopes = weakref.WeakKeyDictionary()


def install() -> None:
    """Scope pygeoapi's translated-configuration cache (idempotent)."""
    if not isinstance(l10n._cfg_cache, _ScopedCache):
        l10n._cfg_cache = _ScopedCache()


def use(api: API) -> None:
    """Mark ``api`` as the one the current request (context) renders with."""
    _CURRENT.set(api)
