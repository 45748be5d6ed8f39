"""The admin app's database pool."""

from __future__ import annotations

from flask import Flask
from psycopg_pool import ConnectionPool

from sdi.db import make_pool
from sdi.settings import Settings

__all__ = ["pool"]


def pool(app: Flask) -> ConnectionPool:
    """The app's pool of autocommit connections, opened on first use."""
    existing: ConnectionPool | None = app.extensions.get("sdi_pool")
    if existing is None:
        settings: Settings = app.extensions["sdi_settings"]
        if not settings.database_url:
            raise RuntimeError("the admin app needs SDI_DATABASE_URL")
        existing = make_pool(settings.database_url, max_size=4)
        app.extensions["sdi_pool"] = existing
    return existing
