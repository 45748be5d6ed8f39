"""Job status: a page that follows an upload's ingestion, and its JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from sdi.admin.db import pool
from sdi.admin.layer_access import load_job
from sdi.jobs import Job

__all__ = ["bp", "job_summary"]

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def job_summary(job: Job) -> dict[str, Any]:
    """What a client may know of a job (not its spool path or worker)."""
    result = job.result or {}
    percent = None
    if job.status == "succeeded":
        percent = 100
    elif job.total and job.status != "failed":
        percent = min(99, int(100 * job.progress / job.total))
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "layer": job.payload.get("layer"),
        "file": job.payload.get("filename"),
        "bytes": job.payload.get("bytes"),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "progress": job.progress,
        "total": job.total,
        "percent": percent,
        "message": job.message,
        "error": job.error,
        "version": result.get("version"),
        "result": job.result,
        "attempts": job.attempts,
    }


def _page_links(summary: dict[str, Any]) -> dict[str, str | None]:
    slug, version = summary["layer"], summary["version"]
    return {
        "layer_url": url_for("layers.detail", slug=slug) if slug else None,
        "version_url": (
            url_for("layers.version", slug=slug, number=version)
            if slug and version
            else None
        ),
    }


@bp.route("/<int:job_id>")
@login_required
def detail(job_id: int) -> str:
    """A job's progress, live (the page polls :func:`status`)."""
    with pool(current_app).connection() as conn:
        job = load_job(conn, current_user.user, job_id)
    summary = job_summary(job)
    return render_template(
        "job.html", job=summary, links=_page_links(summary), done=job.done
    )


@bp.route("/<int:job_id>.json")
@login_required
def status(job_id: int) -> Response:
    """A job's state as JSON, for the status page."""
    with pool(current_app).connection() as conn:
        job = load_job(conn, current_user.user, job_id)
    summary = job_summary(job)
    response = jsonify(summary | _page_links(summary))
    response.headers["Cache-Control"] = "no-store"
    return response
