"""Helpers for the layer, upload and job tests of the admin app (pages and API)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sdi import registry
from sdi.ingest import ingest_file
from sdi.jobs import Job, Worker
from sdi.registry.models import User, Version
from sdi.settings import Settings
from tests.admin.conftest import PASSWORD, csrf_token

Conn = psycopg.Connection[Any]

#: A form's CSRF token in a page.
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def signed_in(base: str, user: User) -> tuple[requests.Session, str]:
    """A real HTTP session (``served``) signed in as ``user``, and its CSRF token."""
    session = requests.Session()
    token = CSRF_FIELD.search(session.get(f"{base}/login", timeout=30).text)
    assert token
    answer = session.post(
        f"{base}/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token[1]},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    # Signing in starts a new session: its token is on every page (sign-out form).
    fresh = CSRF_FIELD.search(session.get(f"{base}/", timeout=30).text)
    assert fresh
    return session, fresh[1]


def ingest(
    conn: Conn, settings: Settings, slug: str, path: Path, user: User | None = None
) -> Version:
    """Load a version directly (test set-up, as ``sdi ingest`` does)."""
    return ingest_file(
        conn,
        settings,
        path,
        layer=slug,
        user_id=user.id if user else None,
        actor=user.email if user else "cli",
    )


def post(
    client: FlaskClient, path: str, data: dict[str, Any] | None = None
) -> TestResponse:
    """POST a page form with the session's CSRF token."""
    token = csrf_token(client, "/login")
    return client.post(path, data={**(data or {}), "csrf_token": token})


def upload_page(
    client: FlaskClient,
    slug: str,
    path: Path,
    *,
    as_json: bool = True,
    token: str | None = None,
    **options: str,
) -> TestResponse:
    """Upload ``path`` through the layer page's form.

    ``as_json``: as its script does (the CSRF token in the ``X-CSRFToken``
    header); else as a post without JavaScript (the token in the form action's
    query string). The token is never in the body: the server does not read
    the body before checking it.
    """
    if token is None:
        token = csrf_token(client, "/login")
    url = f"/layers/{slug}/versions"
    headers = {}
    if as_json:
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
    else:
        url += f"?csrf_token={quote(token)}"
    with path.open("rb") as fh:
        return client.post(
            url,
            data={"file": (fh, path.name), **options},
            headers=headers,
            content_type="multipart/form-data",
        )


def run_jobs(settings: Settings) -> list[Job]:
    """Run every queued job with a real worker (in this thread)."""
    worker = Worker(settings, name="test-worker")
    done = []
    while (job := worker.run_once()) is not None:
        done.append(job)
    return done


def spooled(settings: Settings) -> list[Path]:
    """Everything in the upload spool."""
    root = settings.upload_dir / "spool"
    return sorted(root.rglob("*")) if root.exists() else []


def snapshot(conn: Conn) -> dict[str, Any]:
    """What a refused action must not change."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'sdi_data'"
            " ORDER BY tablename"
        )
    ]
    return {
        "layers": conn.execute("SELECT * FROM sdi.layers ORDER BY id").fetchall(),
        "versions": conn.execute(
            "SELECT layer_id, number FROM sdi.layer_versions ORDER BY 1, 2"
        ).fetchall(),
        "jobs": conn.execute("SELECT id, status FROM sdi.jobs ORDER BY id").fetchall(),
        "audit": conn.execute("SELECT id FROM sdi.audit_log ORDER BY id").fetchall(),
        "generation": registry.current_generation(conn),
        "tables": tables,
    }
