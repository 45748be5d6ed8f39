"""The job queue: rows of ``sdi.jobs`` moved through their states by plain SQL.

``queued -> running -> succeeded | failed``. Workers claim the oldest queued
job with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two workers never take the
same one and neither waits for the other. ``NOTIFY sdi_jobs`` wakes idle
workers; they poll as well, so a lost notification only delays a job.

A running job carries a fencing token, ``(worker, attempts)``: every update
of a running job names it, so a worker whose job was taken from it (its
heartbeat went stale and another worker re-queued it) cannot finish it.
Progress and heartbeats are written by the worker on a connection of their
own, so they are visible while the job's own transaction is still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sdi.errors import ConflictError, NotFoundError

__all__ = [
    "CHANNEL",
    "Job",
    "JobLostError",
    "claim",
    "connection_lost",
    "enqueue",
    "fail",
    "get_job",
    "heartbeat",
    "list_jobs",
    "release",
    "report_progress",
    "requeue_stale",
    "succeed",
]

#: The channel workers LISTEN on; the payload is the new job's id.
CHANNEL = "sdi_jobs"

_INSERT = """
INSERT INTO sdi.jobs (kind, payload, layer_id, created_by, total, message)
VALUES (%(kind)s, %(payload)s, %(layer_id)s, %(created_by)s, %(total)s, %(message)s)
RETURNING *
"""
_NOTIFY = "SELECT pg_notify(%s, %s)"
_GET = "SELECT * FROM sdi.jobs WHERE id = %s"
_LIST = """
SELECT * FROM sdi.jobs
WHERE (%(layer_id)s::int IS NULL OR layer_id = %(layer_id)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY id DESC LIMIT %(limit)s
"""
_CLAIM = """
UPDATE sdi.jobs SET status = 'running', worker = %(worker)s,
    attempts = attempts + 1, started_at = now(), heartbeat_at = now(),
    finished_at = NULL, error = NULL, message = 'Started'
WHERE id = (
    SELECT id FROM sdi.jobs WHERE status = 'queued'
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING *
"""
# Every update of a running job names its fencing token (worker, attempts).
_PROGRESS = """
UPDATE sdi.jobs SET progress = %(progress)s, total = %(total)s,
    message = coalesce(%(message)s, message), heartbeat_at = now()
WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s
  AND attempts = %(attempts)s
"""
_HEARTBEAT = """
UPDATE sdi.jobs SET heartbeat_at = now()
WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s
  AND attempts = %(attempts)s
"""
_SUCCEED = """
UPDATE sdi.jobs SET status = 'succeeded', result = %(result)s,
    message = %(message)s, finished_at = now(), heartbeat_at = now()
WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s
  AND attempts = %(attempts)s
RETURNING *
"""
_FAIL = """
UPDATE sdi.jobs SET status = 'failed', error = %(error)s, message = 'Failed',
    finished_at = now(), heartbeat_at = now()
WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s
  AND attempts = %(attempts)s
RETURNING *
"""
_RELEASE = """
UPDATE sdi.jobs SET status = 'queued', worker = NULL, heartbeat_at = NULL,
    progress = 0, message = %(message)s
WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s
  AND attempts = %(attempts)s
RETURNING *
"""
_REQUEUE_STALE = """
UPDATE sdi.jobs SET status = 'queued', worker = NULL, heartbeat_at = NULL,
    progress = 0,
    message = 'Waiting again: the worker running it stopped answering'
WHERE status = 'running' AND heartbeat_at < now() - %(stale)s
  AND attempts < %(max_attempts)s
RETURNING *
"""
_FAIL_STALE = """
UPDATE sdi.jobs SET status = 'failed', finished_at = now(), message = 'Failed',
    error = 'The job stopped ' || attempts || ' times without finishing (its worker '
        'died or was stopped each time). Check the worker log, or upload the file '
        'again.'
WHERE status = 'running' AND heartbeat_at < now() - %(stale)s
  AND attempts >= %(max_attempts)s
RETURNING *
"""


@dataclass(frozen=True)
class Job:
    """One row of ``sdi.jobs``."""

    id: int
    kind: str
    status: str
    payload: dict[str, Any]
    layer_id: int | None
    created_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: int
    total: int | None
    message: str
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    worker: str | None
    heartbeat_at: datetime | None

    @property
    def done(self) -> bool:
        """Whether the job has finished, one way or the other."""
        return self.status in ("succeeded", "failed")


class JobLostError(ConflictError):
    """The running job is no longer this worker's (it was re-queued or finished)."""


#: SQLSTATEs of a server that went away: the 08 class (connection exceptions),
#: admin_shutdown, crash_shutdown, cannot_connect_now.
_GONE = ("57P01", "57P02", "57P03")


def connection_lost(conn: Connection[Any], exc: psycopg.OperationalError) -> bool:
    """Whether ``exc`` means the database connection is gone (worth a retry).

    Anything else (a row too big, too many columns, out of disk) is about the
    job's own data or the server's state, and would fail again the same way.
    """
    state = exc.sqlstate or ""
    return conn.broken or conn.closed or state.startswith("08") or state in _GONE


def _fence(job: Job) -> dict[str, Any]:
    return {"id": job.id, "worker": job.worker, "attempts": job.attempts}


def enqueue(
    conn: Connection[Any],
    kind: str,
    payload: dict[str, Any],
    *,
    layer_id: int | None = None,
    created_by: int | None = None,
    total: int | None = None,
    message: str = "Waiting for a worker",
) -> Job:
    """Queue a job and wake a worker (the NOTIFY is sent when the caller commits)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Job)) as cur:
        job = cur.execute(
            _INSERT,
            {
                "kind": kind,
                "payload": Jsonb(payload),
                "layer_id": layer_id,
                "created_by": created_by,
                "total": total,
                "message": message,
            },
        ).fetchone()
        assert job is not None
        conn.execute(_NOTIFY, (CHANNEL, str(job.id)))
    return job


def get_job(conn: Connection[Any], job_id: int) -> Job:
    """The job ``job_id``; NotFoundError if none."""
    with conn.cursor(row_factory=class_row(Job)) as cur:
        job = cur.execute(_GET, (job_id,)).fetchone()
    if job is None:
        raise NotFoundError(f"No job {job_id}.")
    return job


def list_jobs(
    conn: Connection[Any],
    *,
    layer_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest jobs first, optionally one layer's or in one state."""
    with conn.cursor(row_factory=class_row(Job)) as cur:
        cur.execute(_LIST, {"layer_id": layer_id, "status": status, "limit": limit})
        return cur.fetchall()


def claim(conn: Connection[Any], worker: str) -> Job | None:
    """Take the oldest queued job for ``worker``; None when the queue is empty."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(_CLAIM, {"worker": worker}).fetchone()


def report_progress(
    conn: Connection[Any],
    job: Job,
    progress: int,
    total: int | None,
    message: str | None = None,
) -> bool:
    """Record progress (and a heartbeat); False if the job is no longer ours."""
    cur = conn.execute(
        _PROGRESS,
        {**_fence(job), "progress": progress, "total": total, "message": message},
    )
    return cur.rowcount == 1


def heartbeat(conn: Connection[Any], job: Job) -> bool:
    """Say the job's worker is alive; False if the job is no longer ours."""
    return conn.execute(_HEARTBEAT, _fence(job)).rowcount == 1


def _finish(conn: Connection[Any], query: str, params: dict[str, Any]) -> Job:
    with conn.transaction(), conn.cursor(row_factory=class_row(Job)) as cur:
        job = cur.execute(query, params).fetchone()
    if job is None:
        raise JobLostError(
            f"Job {params['id']} is no longer run by {params['worker']}: it was "
            "re-queued after its heartbeat went stale, or finished elsewhere."
        )
    return job


def succeed(
    conn: Connection[Any], job: Job, result: dict[str, Any], message: str = "Done"
) -> Job:
    """Mark the job succeeded with its ``result``; JobLostError if not ours.

    Called inside the transaction that did the job's work, so that the work
    and its record commit together (or not at all).
    """
    return _finish(
        conn, _SUCCEED, {**_fence(job), "result": Jsonb(result), "message": message}
    )


def fail(conn: Connection[Any], job: Job, error: str) -> Job:
    """Mark the job failed, with ``error`` saying why in the user's terms."""
    return _finish(conn, _FAIL, {**_fence(job), "error": error})


def release(
    conn: Connection[Any], job: Job, message: str = "Waiting again: interrupted"
) -> Job:
    """Put an interrupted job back in the queue (its work was rolled back)."""
    return _finish(conn, _RELEASE, {**_fence(job), "message": message})


def requeue_stale(
    conn: Connection[Any], *, stale_after: timedelta, max_attempts: int = 3
) -> tuple[list[Job], list[Job]]:
    """Recover running jobs whose worker stopped sending heartbeats.

    Those tried fewer than ``max_attempts`` times go back to the queue; the
    others fail. Returns ``(requeued, failed)``; the caller cleans up after
    the failed ones (their work was rolled back when their worker's
    connection went away).
    """
    params = {"stale": stale_after, "max_attempts": max_attempts}
    with conn.transaction(), conn.cursor(row_factory=class_row(Job)) as cur:
        failed = cur.execute(_FAIL_STALE, params).fetchall()
        requeued = cur.execute(_REQUEUE_STALE, params).fetchall()
    return requeued, failed
