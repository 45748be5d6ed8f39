"""The worker: claims queued jobs and runs them, one at a time.

Run by ``sdi worker`` (and started by ``sdi up``). It LISTENs on
``sdi_jobs`` and polls as well, claims the oldest queued job, and runs it in
one transaction together with the job's "succeeded" record, so a job's work
is committed exactly once. While a job runs, a monitor thread writes its
progress and a heartbeat on a second connection; jobs whose heartbeat goes
stale (their worker died) are re-queued by any worker, or failed after
``max_attempts``.

Whatever happens to an ingest job, its upload is removed once the job is
recorded as succeeded or failed; a failed ingest leaves nothing in the
database either, since its transaction rolled back.

Stopping: the first SIGTERM / SIGINT lets the running job finish and takes
no new one; a second interrupts the job, which rolls back and goes back to
the queue with its upload kept, for the next worker start.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

import psycopg
from psycopg import Connection

from sdi.errors import SdiError
from sdi.ingest.messages import hide_paths
from sdi.jobs import queue
from sdi.jobs.ingest import INGEST, discard_upload, run_ingest, sweep_spool
from sdi.jobs.queue import Job, JobLostError, connection_lost
from sdi.settings import Settings

__all__ = ["Handler", "Worker"]

LOGGER = logging.getLogger(__name__)

#: Runs a job in the caller's transaction: ``(conn, settings, job, progress)`` ->
#: ``(result, message)``; raises an ``SdiError`` with a message for the user.
Handler = Callable[
    [Connection[Any], Settings, Job, Callable[[int, int | None], None]],
    tuple[dict[str, Any], str],
]

HANDLERS: dict[str, Handler] = {INGEST: run_ingest}

_LISTEN = "LISTEN " + queue.CHANNEL
_names = itertools.count(1)


class _Interrupt(KeyboardInterrupt):
    """Raised in the worker's thread by a second stop signal.

    A KeyboardInterrupt, so that psycopg cancels the statement in progress
    before the transaction is rolled back.
    """


class _Monitor:
    """Writes a running job's progress and heartbeat on a connection of its own.

    :meth:`report` is cheap (called per batch by the loader); a thread writes
    the latest figures every ``interval`` seconds when they changed, and a
    heartbeat at least every ``heartbeat`` seconds.
    """

    def __init__(
        self, url: str, job: Job, *, interval: float = 0.5, heartbeat: float = 5.0
    ) -> None:
        self._url = url
        self._job = job
        self._interval = interval
        self._heartbeat = heartbeat
        self._latest: tuple[int, int | None] | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"job-{job.id}-monitor", daemon=True
        )

    def start(self) -> None:
        """Start writing heartbeats."""
        self._thread.start()

    def report(self, done: int, total: int | None) -> None:
        """Note progress (written by the thread shortly)."""
        with self._lock:
            self._latest = (done, total)

    def stop(self) -> None:
        """Write the last figures and stop (idempotent)."""
        if not self._done.is_set():
            self._done.set()
            if self._thread.is_alive():
                self._thread.join()

    def _take(self) -> tuple[int, int | None] | None:
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def _run(self) -> None:
        conn: Connection[Any] | None = None
        last_beat = time.monotonic()
        try:
            while True:
                stopping = self._done.wait(self._interval)
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self._url, autocommit=True)
                    latest = self._take()
                    if latest is not None:
                        queue.report_progress(
                            conn, self._job, *latest, message="Loading features"
                        )
                        last_beat = time.monotonic()
                    elif time.monotonic() - last_beat >= self._heartbeat:
                        queue.heartbeat(conn, self._job)
                        last_beat = time.monotonic()
                except psycopg.Error as exc:
                    LOGGER.warning(
                        "job %d: progress not recorded: %s", self._job.id, exc
                    )
                    if conn is not None:
                        conn.close()
                    conn = None
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()


class Worker:
    """Runs queued jobs until :meth:`stop` (or a signal) asks it to stop.

    ``poll_interval``: longest sleep between looks at the queue when no
    NOTIFY arrives; ``stale_after``: seconds without a heartbeat after which
    another worker's running job is considered dead; ``parent_pid``: stop
    when this process is no longer our parent (``sdi up`` starts the worker
    beside gunicorn); ``spool_max_age``: seconds after which a spooled upload
    that no waiting job needs is removed (what a crash mid-upload leaves).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        poll_interval: float = 5.0,
        heartbeat_interval: float = 5.0,
        progress_interval: float = 0.5,
        stale_after: float = 60.0,
        max_attempts: int = 3,
        parent_pid: int | None = None,
        spool_max_age: float = 86_400,
    ) -> None:
        if not settings.database_url:
            raise ValueError("the worker needs settings.database_url")
        self.settings = settings
        self.url: str = settings.database_url
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{next(_names)}"
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self.stale_after = timedelta(seconds=stale_after)
        self.max_attempts = max_attempts
        self.parent_pid = parent_pid
        self.spool_max_age = spool_max_age
        self._stopping = threading.Event()
        self._busy: Job | None = None
        self._last_recovery = 0.0

    # -- control ----------------------------------------------------------------

    def stop(self) -> None:
        """Finish the running job (if any), then return from :meth:`run`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for."""
        return self._stopping.is_set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: first stop after the running job, then interrupt it.

        Only from the main thread, which must be the one calling :meth:`run`.
        """

        def handle(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stopping.is_set() and self._busy is not None:
                LOGGER.warning(
                    "%s again: interrupting job %d (it goes back to the queue)",
                    name,
                    self._busy.id,
                )
                raise _Interrupt
            self._stopping.set()
            if self._busy is not None:
                LOGGER.warning(
                    "%s: finishing job %d before stopping (send it again to "
                    "interrupt the job; it will be re-queued)",
                    name,
                    self._busy.id,
                )

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        """Run jobs until stopped; survives the database going away for a while."""
        LOGGER.info("worker %s started", self.name)
        while not self._should_stop():
            try:
                self._serve()
            except psycopg.OperationalError as exc:
                LOGGER.error(
                    "worker %s: database unavailable (%s); retrying", self.name, exc
                )
                self._stopping.wait(min(self.poll_interval, 5.0))
        LOGGER.info("worker %s stopped", self.name)

    def run_once(self) -> Job | None:
        """Claim and run one job if there is one; returns it as finished."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.recover(conn)
            job = queue.claim(conn, self.name)
            if job is None:
                return None
            self._run_job(conn, job)
            return queue.get_job(conn, job.id)

    def _should_stop(self) -> bool:
        if (
            self.parent_pid is not None
            and os.getppid() != self.parent_pid
            and not self._stopping.is_set()
        ):
            LOGGER.warning("worker %s: parent process gone; stopping", self.name)
            self._stopping.set()
        return self._stopping.is_set()

    def _serve(self) -> None:
        with (
            psycopg.connect(self.url, autocommit=True) as conn,
            psycopg.connect(self.url, autocommit=True) as listener,
        ):
            listener.execute(_LISTEN)
            while not self._should_stop():
                if time.monotonic() - self._last_recovery >= min(
                    self.stale_after.total_seconds() / 2, 30.0
                ):
                    self.recover(conn)
                job = queue.claim(conn, self.name)
                if job is not None:
                    self._run_job(conn, job)
                    continue
                self._wait(listener)

    def _wait(self, listener: Connection[Any]) -> None:
        """Sleep until a NOTIFY, a stop, or ``poll_interval`` seconds."""
        deadline = time.monotonic() + self.poll_interval
        while not self._should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for _ in listener.notifies(timeout=min(left, 0.5), stop_after=1):
                return

    def recover(self, conn: Connection[Any]) -> None:
        """Re-queue (or fail) other workers' jobs whose heartbeat went stale,
        and remove abandoned uploads."""
        self._last_recovery = time.monotonic()
        requeued, failed = queue.requeue_stale(
            conn, stale_after=self.stale_after, max_attempts=self.max_attempts
        )
        for job in requeued:
            LOGGER.warning("re-queued job %d: its worker stopped answering", job.id)
        for job in failed:
            LOGGER.error("job %d failed: %s", job.id, job.error)
            self._cleanup(job)
        sweep_spool(conn, self.settings, older_than=self.spool_max_age)

    # -- one job ----------------------------------------------------------------

    def _run_job(self, conn: Connection[Any], job: Job) -> None:
        LOGGER.info("worker %s: job %d (%s) started", self.name, job.id, job.kind)
        handler = HANDLERS.get(job.kind)
        monitor = _Monitor(
            self.url,
            job,
            interval=self.progress_interval,
            heartbeat=self.heartbeat_interval,
        )
        finished = False
        self._busy = job
        monitor.start()
        try:
            if handler is None:
                raise SdiError(f"This server does not know jobs of kind {job.kind!r}.")
            with conn.transaction():
                result, message = handler(conn, self.settings, job, monitor.report)
                monitor.stop()
                queue.succeed(conn, job, result, message)
            finished = True
            LOGGER.info("job %d succeeded: %s", job.id, message)
        except KeyboardInterrupt:
            monitor.stop()
            queue.release(conn, job)
            LOGGER.warning("job %d interrupted and re-queued", job.id)
            raise
        except JobLostError as exc:
            LOGGER.warning("job %d: %s; its work was rolled back", job.id, exc)
        except SdiError as exc:
            monitor.stop()
            message = hide_paths(exc.message, self.settings.var_dir)
            finished = self._fail(conn, job, message)
            LOGGER.info("job %d refused: %s", job.id, exc.message)
        except psycopg.OperationalError as exc:
            if connection_lost(conn, exc):
                # The work rolled back; the heartbeat will go stale and the job
                # will be re-queued, upload and all.
                raise
            # A limit, a timeout, a lock: about this job, not an outage. Only a
            # lost connection puts a job back in the queue.
            LOGGER.exception("job %d: the database refused its work", job.id)
            monitor.stop()
            finished = self._fail(
                conn,
                job,
                "The database could not complete this job (PostgreSQL error "
                f"{exc.sqlstate or 'without a code'}). Nothing was saved; the "
                "worker log has the details.",
            )
        except Exception:
            LOGGER.exception("job %d: unexpected error", job.id)
            monitor.stop()
            finished = self._fail(
                conn,
                job,
                "The job stopped on an unexpected error. Nothing was saved. This "
                "is a bug in sdi; the worker log has the details.",
            )
        finally:
            monitor.stop()
            self._busy = None
            if finished:
                self._cleanup(job)

    def _fail(self, conn: Connection[Any], job: Job, error: str) -> bool:
        """Record the failure; False if the job was meanwhile taken from us."""
        try:
            queue.fail(conn, job, error)
        except JobLostError as exc:
            LOGGER.warning("job %d: %s", job.id, exc)
            return False
        return True

    def _cleanup(self, job: Job) -> None:
        """Remove what a finished job no longer needs (an ingest's upload)."""
        path = job.payload.get("path")
        if job.kind == INGEST and isinstance(path, str):
            discard_upload(self.settings, path)
