"""Session-wide fixtures: a throwaway PostGIS cluster and a database per test.

The cluster is started from the OS binaries in a temporary directory (as the
``postgres`` OS user when we are root) and removed at the end of the session.
A template database holds the migrated schema; every test that asks for
``db_url`` gets a fresh copy of it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sdi.db import Cluster, migrate
from sdi.settings import Settings

TEMPLATE = "sdi_template"
_counter = itertools.count()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostGIS cluster for this test session only."""
    root = Path(tempfile.mkdtemp(prefix="sdi-test-pg-"))
    root.chmod(0o755)  # the postgres OS user must reach the data directory
    cluster = Cluster(root / "data", free_port())
    cluster.init()
    cluster.start()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    with psycopg.connect(cluster.url(TEMPLATE)) as conn:
        migrate(conn)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db_url(pg_cluster: Cluster) -> Iterator[str]:
    """URL of a fresh, migrated database for one test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    yield pg_cluster.url(name)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the test's database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test's database and a private var/ directory."""
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        collections_dir=tmp_path / "collections",
        config_dir=Path(__file__).resolve().parent.parent / "config",
        secret_key="test-secret",
    )
