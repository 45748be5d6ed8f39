"""An embedded PostgreSQL + PostGIS cluster run from the OS binaries.

PostgreSQL refuses to run as root, so when we are root the cluster's files
belong to the ``postgres`` OS user and its programs run as that user.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sdi.errors import SdiError

__all__ = ["Cluster", "ClusterError", "find_pg_bindir"]

LOGGER = logging.getLogger(__name__)
_SUPERUSER = "sdi"


class ClusterError(SdiError):
    """The embedded cluster could not be set up or started."""


def find_pg_bindir() -> Path:
    """The newest PostgreSQL binary directory that has PostGIS installed."""
    candidates = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bindir / "initdb").exists() and control.exists():
            candidates.append((float(version), bindir))
    if candidates:
        return max(candidates)[1]
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterError(
        "No PostgreSQL with PostGIS found: install postgresql and "
        "postgresql-NN-postgis-3 (make run does this), or set SDI_DATABASE_URL."
    )


def _run_as() -> str | None:
    """The OS user to run PostgreSQL as: ``postgres`` when we are root."""
    return "postgres" if os.geteuid() == 0 else None


@dataclass
class Cluster:
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``."""

    data_dir: Path
    port: int
    password_file: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.bindir = find_pg_bindir()
        self.user = _run_as()

    # -- helpers -----------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        LOGGER.debug("running %s", cmd)
        return subprocess.run(
            cmd,
            user=self.user,
            check=check,
            capture_output=True,
            text=True,
            cwd="/",
        )

    def _password(self) -> str | None:
        if self.password_file and self.password_file.exists():
            return self.password_file.read_text().strip()
        return None

    @property
    def initialised(self) -> bool:
        """Whether ``initdb`` has run in the data directory."""
        return (self.data_dir / "PG_VERSION").exists()

    def url(self, dbname: str = "sdi") -> str:
        """A libpq URL for a database of this cluster."""
        password = self._password()
        auth = f"{_SUPERUSER}:{password}" if password else _SUPERUSER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle ---------------------------------------------------------
    def init(self) -> bool:
        """Run ``initdb`` unless already done; returns whether it ran."""
        if self.initialised:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["initdb", "-D", str(self.data_dir), "-U", _SUPERUSER, "-E", "UTF8"]
        args += ["--locale=C.UTF-8", "--auth-local=trust"]
        pwfile: Path | None = None
        if self.password_file is not None:
            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            if not self.password_file.exists():
                self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
                self.password_file.chmod(0o600)
            # initdb runs as the cluster owner, who cannot read our file.
            pwfile = self.data_dir.parent / f".{self.data_dir.name}.pw"
            shutil.copyfile(self.password_file, pwfile)
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth-host=trust"]
        self._chown(self.data_dir, pwfile)
        try:
            result = self._run(*args, check=False)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stderr.strip()}")
        return True

    def _chown(self, *paths: Path | None) -> None:
        if self.user is None:
            return
        for path in paths:
            if path is not None:
                shutil.chown(path, self.user, self.user)
        self.data_dir.chmod(0o700)
        probe = subprocess.run(
            ["test", "-w", str(self.data_dir)], user=self.user, check=False
        )
        if probe.returncode != 0:
            raise ClusterError(
                f"The {self.user} OS user cannot reach {self.data_dir}: give the "
                "directories above it o+x, or set SDI_VAR_DIR elsewhere."
            )

    @property
    def running(self) -> bool:
        """Whether the cluster's postmaster is up."""
        if not self.initialised:
            return False
        return (
            self._run(
                "pg_ctl", "status", "-D", str(self.data_dir), check=False
            ).returncode
            == 0
        )

    def start(self, timeout: float = 60) -> None:
        """Start the cluster (no-op when it runs) and wait until it accepts."""
        if self.running:
            return
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.data_dir} "
            "-c max_connections=200 -c shared_buffers=256MB -c fsync=on "
            # A single local node: no replication, so tables created and loaded
            # in one transaction (a new layer) skip the WAL.
            "-c wal_level=minimal -c max_wal_senders=0"
        )
        result = self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
            check=False,
        )
        if result.returncode != 0:
            log = self.data_dir / "server.log"
            tail = ""
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            raise ClusterError(
                f"PostgreSQL did not start on port {self.port}: "
                f"{result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); no-op when it is not running."""
        if self.running:
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def ensure_database(self, dbname: str = "sdi") -> str:
        """Create ``dbname`` if missing; returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(
                        psycopg.sql.Identifier(dbname)
                    )
                )
        return self.url(dbname)
