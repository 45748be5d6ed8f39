"""Uploads: file parts stream straight to disk, then become ingest jobs.

:class:`UploadRequest` is the admin app's request class (installed when this
blueprint is registered): werkzeug's multipart parser writes every file part
into a fresh file of the upload spool (``<upload_dir>/spool/<token>/<name>``)
as it arrives, in chunks, so a 2 GB upload never sits in memory or in /tmp.
The parse happens wherever the form is first read (Flask-WTF's CSRF check,
for the pages); a spooled file that no view claims with :func:`take_upload`
is deleted when the request ends, as is a partial one after an error.
``settings.max_upload_bytes`` (the app's ``MAX_CONTENT_LENGTH``) caps the
whole request: 413 with a message naming the limit.

The page form and the JSON API both end in :func:`queue_upload`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Any

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    flash,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_required
from psycopg import Connection
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from sdi.admin.db import pool
from sdi.admin.errors import json_error
from sdi.admin.layer_access import load_layer, settings
from sdi.errors import BadInputError, SdiError
from sdi.jobs import Job, discard_upload, enqueue_ingest, spool_path
from sdi.jobs.ingest import OPTIONS
from sdi.registry.models import User
from sdi.registry.permissions import Action
from sdi.settings import Settings

__all__ = ["UploadRequest", "bp", "human_bytes", "queue_upload", "take_upload"]

LOGGER = logging.getLogger(__name__)

bp = Blueprint("uploads", __name__)

#: The multipart field holding the file, in the page form and the JSON API.
FILE_FIELD = "file"


def human_bytes(n: int) -> str:
    """``2147483648`` -> ``2.0 GiB``."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def too_large_message(limit: int) -> str:
    """What a 413 says."""
    return (
        f"The upload is larger than this server accepts ({human_bytes(limit)}, "
        "SDI_MAX_UPLOAD_BYTES). Split the data into several layers, or ask the "
        "operator to raise the limit."
    )


class UploadRequest(Request):
    """A request whose multipart file parts are written into the upload spool."""

    def _spooled(self) -> list[Path]:
        spooled: list[Path] = self.__dict__.setdefault("_sdi_spooled", [])
        return spooled

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        config: Settings = current_app.extensions["sdi_settings"]
        path = spool_path(config, filename or "upload")
        self._spooled().append(path)
        return path.open("w+b")

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge as exc:
            limit = self.max_content_length or 0
            raise RequestEntityTooLarge(too_large_message(limit)) from exc

    def release_spooled(self) -> None:
        """Delete spooled files no view took (called when the request ends)."""
        config: Settings = current_app.extensions["sdi_settings"]
        for path in self._spooled():
            discard_upload(config, path)
        self._spooled().clear()

    def claim(self, path: Path) -> None:
        """Keep ``path`` past the request (a job owns it now)."""
        self._spooled().remove(path)


@bp.record_once
def _install_request_class(state: BlueprintSetupState) -> None:
    # Every request of the app: the form may be parsed before any view runs.
    app = state.app
    assert isinstance(app, Flask)
    app.request_class = UploadRequest


@bp.teardown_app_request
def _release(exc: BaseException | None) -> None:
    if isinstance(request, UploadRequest):
        request.release_spooled()


def take_upload() -> tuple[Path, str]:
    """The spooled file of the request's ``file`` part, now the caller's to keep.

    Returns its path and its (cleaned) file name. BadInputError when the
    request carries no file.
    """
    storage = request.files.get(FILE_FIELD)
    if storage is None or not storage.filename:
        raise BadInputError(
            f"Send the file as the multipart form field '{FILE_FIELD}' "
            "(e.g. curl -F file=@roads.zip)."
        )
    stream = storage.stream
    path = Path(getattr(stream, "name", ""))
    if not isinstance(request, UploadRequest) or path not in request._spooled():
        raise RuntimeError("the upload was not spooled by UploadRequest")
    stream.close()
    request.claim(path)
    return path, path.name


def queue_upload(conn: Connection[Any], user: User, slug: str) -> Job:
    """Queue the request's file as the next version of ``slug`` (EDIT_LAYER).

    Ingest options come from the form fields of the same names
    (``source_layer``, ``encoding``, ``crs``, ``x_field``, ``y_field``, ``note``).
    """
    layer = load_layer(conn, user, slug, Action.EDIT_LAYER)
    path, name = take_upload()
    config = settings()
    try:
        options = {k: (request.form.get(k) or "").strip() or None for k in OPTIONS}
        return enqueue_ingest(
            conn,
            config,
            layer,
            path,
            filename=name,
            user_id=user.id,
            actor=user.email,
            options=options,
        )
    except BaseException:
        discard_upload(config, path)
        raise


def job_links(job: Job) -> dict[str, str]:
    """Where to follow a job: its page and its JSON status (for the pages)."""
    return {
        "page_url": url_for("jobs.detail", job_id=job.id),
        "status_url": url_for("jobs.status", job_id=job.id),
    }


@bp.route("/layers/<slug>/versions", methods=["POST"])
@login_required
def upload(slug: str) -> Response | tuple[Response, int]:
    """Receive a file for a new version (the page's form, or its script).

    The script asks for JSON and gets 202 with the job's page; a plain form
    post is redirected to that page.
    """
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        with pool(current_app).connection() as conn:
            job = queue_upload(conn, current_user.user, slug)
    except SdiError as exc:
        if wants_json:  # the page's script shows the message under the form
            return json_error(exc.status, exc.code, exc.message), exc.status
        if isinstance(exc, BadInputError):  # a plain form post: say it on the page
            flash(exc.message, "error")
            return redirect(url_for("layers.detail", slug=slug), code=303)
        raise
    links = job_links(job)
    if wants_json:
        return jsonify({"job": job.id, "status": job.status, **links}), 202
    return redirect(links["page_url"], code=303)
