"""``sdi worker``: run background jobs (uploads queued by the admin app)."""

from __future__ import annotations

import logging

import click

from sdi.cli.context import resolve_database_url
from sdi.jobs import Worker
from sdi.settings import Settings

__all__ = ["worker"]


@click.command()
@click.option("--once", is_flag=True, help="Run at most one queued job, then exit.")
@click.option(
    "--poll",
    "poll_interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between looks at the queue when no notification arrives.",
)
@click.option(
    "--stale-after",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds without a heartbeat after which a running job is re-queued.",
)
@click.option("--parent-pid", type=int, hidden=True, help="Stop when it exits.")
@click.pass_obj
def worker(
    settings: Settings,
    once: bool,
    poll_interval: float,
    stale_after: float,
    parent_pid: int | None,
) -> None:
    """Run queued jobs (ingestion of uploads) until stopped.

    Ctrl-C / SIGTERM lets the running job finish; a second one interrupts it
    and puts it back in the queue.
    """
    jobs_log = logging.getLogger("sdi.jobs")
    if jobs_log.getEffectiveLevel() > logging.INFO:
        jobs_log.setLevel(logging.INFO)
    runner = Worker(
        settings.with_(database_url=resolve_database_url(settings)),
        poll_interval=poll_interval,
        stale_after=stale_after,
        parent_pid=parent_pid,
    )
    if once:
        job = runner.run_once()
        click.echo(
            "no queued job"
            if job is None
            else f"job {job.id}: {job.status}: {job.error or job.message}"
        )
        return
    runner.install_signal_handlers()
    try:
        runner.run()
    except KeyboardInterrupt:
        click.echo("worker interrupted; the running job went back to the queue")
