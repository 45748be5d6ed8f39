"""What every suite gets: options, a console, a throwaway PostGIS, machine facts."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from sdi.db import Cluster, migrate
from sdi.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


@dataclass
class Options:
    """Command-line options shared by the suites."""

    scale: float = 1.0
    repeat: int = 1
    formats: tuple[str, ...] = ("shp", "gpkg")
    data_dir: Path = BENCH_DIR / "data"
    results_dir: Path = BENCH_DIR / "results"
    regenerate: bool = False
    keep: bool = False  # keep the cluster's directory (for a look afterwards)
    # serving suite
    duration: float = 10.0  # seconds of wrk per server and request type
    servers: tuple[str, ...] = ("sdi", "pygeoapi", "pygeoapi-nocount", "tipg")
    requests: tuple[str, ...] = ()  # request type ids to run (empty: all)
    slow_timeout: float = 60.0  # a single request slower than this: a time-out
    export_timeout: float = 1800.0  # seconds an ogr2ogr export may take


@dataclass
class PostGIS:
    """A running throwaway cluster with one migrated database."""

    cluster: Cluster
    root: Path
    dbname: str

    @property
    def url(self) -> str:
        """libpq URL of the benchmark database."""
        return self.cluster.url(self.dbname)

    @property
    def ogr_dsn(self) -> str:
        """The same database as a GDAL ``PG:`` connection string."""
        return (
            f"PG:host=127.0.0.1 port={self.cluster.port} dbname={self.dbname} user=sdi"
        )

    def settings(self) -> Settings:
        """sdi settings pointing at this database, with a private var/."""
        return Settings(database_url=self.url, var_dir=self.root / "var")

    def connect(self) -> psycopg.Connection[Any]:
        """An autocommit connection, as the CLI and apps use."""
        return psycopg.connect(self.url, autocommit=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchContext:
    """Shared by the suites of one ``python -m bench`` run."""

    options: Options
    console: Console = field(default_factory=lambda: _console())

    @contextmanager
    def postgis(
        self, dbname: str = "bench", port: int | None = None
    ) -> Iterator[PostGIS]:
        """Start a cluster on ``port`` (default: a free one) under a temporary
        directory; stop it after.

        When we are root the cluster runs as the ``postgres`` OS user, so the
        directory is made reachable (o+x) for it.
        """
        root = Path(tempfile.mkdtemp(prefix="sdi-bench-"))
        root.chmod(0o755)
        cluster = Cluster(root / "pg", port or free_port())
        self.console.log(f"Starting PostGIS on port {cluster.port} in {root}")
        cluster.init()
        cluster.start()
        try:
            url = cluster.ensure_database(dbname)
            with psycopg.connect(url) as conn:
                migrate(conn)
            yield PostGIS(cluster, root, dbname)
        finally:
            cluster.stop()
            if self.options.keep:
                self.console.log(f"Kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)


def _console() -> Console:
    """Rich console; wide enough for the tables when writing to a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Facts that make figures comparable: machine, versions, commit."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gdal_cli": _first_line(["ogr2ogr", "--version"]),
        "sdi_commit": _first_line(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"]),
    }
