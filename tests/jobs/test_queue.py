"""The queue's SQL: enqueue, claim (SKIP LOCKED), fencing and stale recovery."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from sdi.jobs import queue
from sdi.jobs.queue import JobLostError

Conn = psycopg.Connection[Any]


def test_enqueue_notifies_and_claim_takes_the_oldest(conn: Conn, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN sdi_jobs")
        first = queue.enqueue(conn, "ingest", {"n": 1})
        second = queue.enqueue(conn, "ingest", {"n": 2})
        got = [n.payload for n in listener.notifies(timeout=2, stop_after=2)]
    assert got == [str(first.id), str(second.id)]
    assert first.status == "queued" and first.message == "Waiting for a worker"

    claimed = queue.claim(conn, "w1")
    assert claimed is not None and claimed.id == first.id
    assert claimed.status == "running" and claimed.worker == "w1"
    assert claimed.attempts == 1 and claimed.started_at and claimed.heartbeat_at
    again = queue.claim(conn, "w2")
    assert again is not None and again.id == second.id
    assert queue.claim(conn, "w3") is None


def test_a_locked_job_is_skipped_not_waited_for(conn: Conn, db_url: str) -> None:
    first = queue.enqueue(conn, "ingest", {})
    second = queue.enqueue(conn, "ingest", {})
    with psycopg.connect(db_url) as other:  # a transaction holding the first row
        other.execute("SELECT 1 FROM sdi.jobs WHERE id = %s FOR UPDATE", (first.id,))
        claimed = queue.claim(conn, "w1")
        assert claimed is not None and claimed.id == second.id
        other.rollback()
    claimed = queue.claim(conn, "w2")
    assert claimed is not None and claimed.id == first.id


def test_concurrent_claims_never_share_a_job(conn: Conn, db_url: str) -> None:
    ids = {queue.enqueue(conn, "ingest", {"i": i}).id for i in range(60)}
    taken: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        mine: list[int] = []
        with psycopg.connect(db_url, autocommit=True) as c:
            start.wait()
            while (job := queue.claim(c, name)) is not None:
                mine.append(job.id)
        taken[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    claimed = [job_id for mine in taken.values() for job_id in mine]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
    rows = conn.execute("SELECT DISTINCT attempts, status FROM sdi.jobs").fetchall()
    assert rows == [(1, "running")]


def test_progress_heartbeat_and_success_need_the_fencing_token(conn: Conn) -> None:
    queue.enqueue(conn, "ingest", {})
    job = queue.claim(conn, "w1")
    assert job is not None
    assert queue.report_progress(conn, job, 10, 100, "Loading features")
    row = queue.get_job(conn, job.id)
    assert (row.progress, row.total, row.message) == (10, 100, "Loading features")

    # Its heartbeat goes stale: another worker's recovery re-queues it.
    conn.execute(
        "UPDATE sdi.jobs SET heartbeat_at = now() - interval '5 minutes' WHERE id = %s",
        (job.id,),
    )
    requeued, failed = queue.requeue_stale(conn, stale_after=timedelta(seconds=60))
    assert [j.id for j in requeued] == [job.id] and failed == []
    assert queue.get_job(conn, job.id).status == "queued"

    # The first worker can no longer report or finish it ...
    assert not queue.report_progress(conn, job, 20, 100)
    assert not queue.heartbeat(conn, job)
    with pytest.raises(JobLostError, match="no longer run by w1"):
        queue.succeed(conn, job, {"version": 1})
    with pytest.raises(JobLostError):
        queue.fail(conn, job, "late")
    # ... while the worker that claims it next can.
    retry = queue.claim(conn, "w2")
    assert retry is not None and retry.id == job.id and retry.attempts == 2
    done = queue.succeed(conn, retry, {"version": 1}, "Version 1")
    assert done.status == "succeeded" and done.result == {"version": 1}
    assert done.finished_at is not None and done.done


def test_a_job_whose_worker_keeps_dying_fails(conn: Conn) -> None:
    job = queue.enqueue(conn, "ingest", {"path": "/nowhere"})
    for attempt in (1, 2, 3):
        claimed = queue.claim(conn, f"w{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        conn.execute(
            "UPDATE sdi.jobs SET heartbeat_at = now() - interval '1 hour'"
            " WHERE id = %s",
            (job.id,),
        )
        requeued, failed = queue.requeue_stale(
            conn, stale_after=timedelta(seconds=60), max_attempts=3
        )
        if attempt < 3:
            assert [j.id for j in requeued] == [job.id] and not failed
    assert [j.id for j in failed] == [job.id]
    final = queue.get_job(conn, job.id)
    assert final.status == "failed"
    assert final.error is not None and "stopped 3 times" in final.error


def test_fresh_running_jobs_are_left_alone(conn: Conn) -> None:
    queue.enqueue(conn, "ingest", {})
    assert queue.claim(conn, "w1") is not None
    assert queue.requeue_stale(conn, stale_after=timedelta(seconds=60)) == ([], [])


def test_release_puts_an_interrupted_job_back(conn: Conn) -> None:
    queue.enqueue(conn, "ingest", {})
    job = queue.claim(conn, "w1")
    assert job is not None
    queue.report_progress(conn, job, 5, 10)
    back = queue.release(conn, job)
    assert back.status == "queued" and back.worker is None and back.progress == 0


def test_list_jobs_newest_first(conn: Conn) -> None:
    a = queue.enqueue(conn, "ingest", {})
    b = queue.enqueue(conn, "ingest", {})
    assert [j.id for j in queue.list_jobs(conn)] == [b.id, a.id]
    assert queue.list_jobs(conn, status="running") == []
    with pytest.raises(Exception, match="No job 999"):
        queue.get_job(conn, 999)
