"""Server processes: start in their own session, wait until up, sample memory, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def port(preferred: int) -> int:
    """``preferred`` if nobody listens there, else any free port on 127.0.0.1."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): state ppid pgrp sid
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def rss_mb(pids: list[int]) -> float:
    """Resident memory of ``pids`` together, in MB."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * _PAGE / 1024**2


@dataclass
class Server:
    """A running server: its process group (master and workers) and base URL."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    _pids: list[int] = field(default_factory=list)

    def pids(self) -> list[int]:
        """Every process of the server (it runs in its own session)."""
        return _session_pids(self.process.pid)

    def rss_mb(self) -> float:
        """Resident memory of master and workers together, in MB."""
        return rss_mb(self.pids())

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (user + system)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS

    def wait_idle(self, timeout: float = 60.0) -> float:
        """Wait until the server stops working on earlier requests; seconds waited.

        wrk stops with requests still queued: the next type must not pay for them.
        """
        start = time.monotonic()
        last = self.cpu_seconds()
        while time.monotonic() - start < timeout:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - last < 0.05:  # under 10 % of a core
                break
            last = now
        return time.monotonic() - start

    @contextlib.contextmanager
    def peak_rss(self, every: float = 0.1) -> Iterator[dict[str, float]]:
        """Sample RSS every ``every`` s while the block runs; ``["peak_mb"]``."""
        out = {"peak_mb": self.rss_mb(), "start_mb": 0.0}
        out["start_mb"] = out["peak_mb"]
        stop = threading.Event()

        def sample() -> None:
            pids = self.pids()
            last = time.monotonic()
            while not stop.wait(every):
                if time.monotonic() - last > 1:  # workers may be replaced
                    pids, last = self.pids(), time.monotonic()
                out["peak_mb"] = max(out["peak_mb"], rss_mb(pids))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield out
        finally:
            stop.set()
            thread.join()


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=10).status_code < 500:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come up: {log.read_text()[-3000:]}")


@contextlib.contextmanager
def serve(
    name: str, args: list[str], env: dict[str, str], base: str, ready: str, log: Path
) -> Iterator[Server]:
    """Run ``args`` in a new session until the block ends; output goes to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait(base + ready, process, log, name)
        yield Server(name, base, process, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Workers of a killed master may linger a moment in the session.
        deadline = time.monotonic() + 10
        while _session_pids(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
