"""Uploads: file parts stream straight to disk, then become ingest jobs.

:class:`UploadRequest` is the admin app's request class (installed when this
blueprint is registered). On an upload route (``sdi.admin.bodies``: the page
upload below and the JSON API's), werkzeug's multipart parser writes every
file part into a fresh file of the upload spool
(``<upload_dir>/spool/<token>/<name>``) as it arrives, in chunks, so a 2 GB
upload never sits in memory or in /tmp; on every other route file parts stay
in memory, within the small body limit (``SDI_MAX_FORM_BYTES``). The body is
parsed only in the view, after the session and CSRF token (pages) or the
bearer token (JSON API) have been checked. A spooled file that no view claims
with :func:`take_upload` is deleted when the request ends, as is a partial one
after an error. The request's ``max_content_length`` is its route's limit
(:func:`sdi.admin.bodies.body_limit`): 413 with a message naming the limit.

The page form and the JSON API both end in :func:`queue_upload`.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import IO, Any

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    flash,
    has_app_context,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_required
from psycopg import Connection
from werkzeug.wrappers import Response

from sdi.admin.bodies import body_limit, human_bytes, is_upload_route, page_upload
from sdi.admin.db import pool
from sdi.admin.errors import json_error
from sdi.admin.layer_access import load_layer, settings
from sdi.admin.text_input import refuse_nul
from sdi.errors import BadInputError, SdiError
from sdi.jobs import Job, discard_upload, enqueue_ingest, spool_path
from sdi.jobs.ingest import OPTIONS
from sdi.registry.models import User
from sdi.registry.permissions import Action
from sdi.settings import Settings

__all__ = [
    "ACCEPTED_FORMATS",
    "UploadRequest",
    "bp",
    "human_bytes",
    "queue_upload",
    "take_upload",
]

LOGGER = logging.getLogger(__name__)

bp = Blueprint("uploads", __name__)

#: The multipart field holding the file, in the page form and the JSON API.
FILE_FIELD = "file"

#: What an upload may be (vector files, or a GeoTIFF for a raster layer).
ACCEPTED_FORMATS = (
    "Zipped Shapefile, GeoPackage, GeoJSON, CSV, zipped File Geodatabase or GeoTIFF"
)


class UploadRequest(Request):
    """A request limited to its route's body size; upload routes spool file parts."""

    @property
    def max_content_length(self) -> int | None:
        """The route's limit (SDI_MAX_UPLOAD_BYTES or SDI_MAX_FORM_BYTES)."""
        if self._max_content_length is not None:
            return self._max_content_length
        if not has_app_context():  # fail closed
            return Settings.max_form_bytes
        return body_limit(current_app, self.endpoint)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

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
        if not is_upload_route(current_app, self.endpoint):
            return io.BytesIO()  # within SDI_MAX_FORM_BYTES; never on disk
        config: Settings = current_app.extensions["sdi_settings"]
        path = spool_path(config, filename or "upload")
        self._spooled().append(path)
        return path.open("w+b")

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
    # Every request of the app: each has its route's body limit.
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
        refuse_nul(request.form)
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
@page_upload
@login_required
def upload(slug: str) -> Response | tuple[Response, int]:
    """Receive a file for a new version (the page's form, or its script).

    The CSRF token comes in the ``X-CSRFToken`` header (the script) or the
    form action's ``csrf_token`` query parameter (without JavaScript), so
    that an anonymous or forged post is refused before its body is read. The
    script asks for JSON and gets 202 with the job's page; a plain form
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
