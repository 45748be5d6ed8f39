"""How long browsers and shared caches may keep responses for explicit versions.

A version's content never changes, but whether it may be served does: a
version can be taken down (published in error) and a layer can become
restricted. So responses pinned to ``version=N`` (items, features, changes,
vector tiles) are not ``immutable``: they are ``public`` for
``SDI_VERSION_MAX_AGE`` seconds (default one day), a lifetime within which an
operator can purge a reverse proxy's cache (README, "Caching and purging"),
and afterwards they are revalidated with their strong ``ETag``.
"""

from __future__ import annotations

from flask import Flask, current_app

from sdi.settings import Settings

__all__ = ["SETTINGS_KEY", "install", "version_cache_control"]

#: Where the OGC API app keeps its :class:`Settings` in ``app.extensions``.
SETTINGS_KEY = "sdi_settings"


def install(app: Flask, settings: Settings) -> None:
    """Make ``settings`` available to :func:`version_cache_control` in ``app``."""
    app.extensions[SETTINGS_KEY] = settings


def version_cache_control() -> str:
    """``Cache-Control`` of a response for an explicitly requested version."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    return f"public, max-age={settings.version_max_age}"
