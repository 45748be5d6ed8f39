"""What every CLI command needs: settings, the database URL, a connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from psycopg import Connection

from sdi.db import Cluster, open_connection
from sdi.errors import SdiError
from sdi.settings import Settings

__all__ = ["connect", "embedded_cluster", "resolve_database_url"]


def embedded_cluster(settings: Settings) -> Cluster:
    """The embedded cluster under ``var/pg`` (not necessarily initialised)."""
    return Cluster(
        settings.pg_dir,
        settings.pg_port,
        password_file=settings.var_dir / "pg.password",
    )


def resolve_database_url(settings: Settings) -> str:
    """``SDI_DATABASE_URL``, or the embedded cluster's URL when it is running."""
    if settings.database_url:
        return settings.database_url
    cluster = embedded_cluster(settings)
    if not cluster.running:
        raise click.ClickException(
            "No database: set SDI_DATABASE_URL, or start the embedded cluster with "
            "`sdi db start` (make run does)."
        )
    return cluster.url("sdi")


@contextmanager
def connect(settings: Settings) -> Iterator[Connection[Any]]:
    """A connection for one command; SdiErrors become clean CLI errors."""
    conn = open_connection(resolve_database_url(settings), autocommit=True)
    try:
        yield conn
    except SdiError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        conn.close()
