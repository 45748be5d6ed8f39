"""Request body limits: only upload routes take large bodies, and only when signed in.

Every route of the admin app accepts a body of at most ``SDI_MAX_FORM_BYTES``
except the upload routes, which accept ``SDI_MAX_UPLOAD_BYTES``:

- the page upload is decorated with :func:`page_upload`: it checks the session
  and the CSRF token before its view reads anything, and the token travels
  outside the body (the ``X-CSRFToken`` header sent by ``upload.js``, or the
  ``csrf_token`` query parameter of the form's action for a post without
  JavaScript);
- the JSON API upload is decorated with :func:`accepts_upload` under its
  bearer-token check (the JSON API is exempt from CSRF).

:func:`init_app` installs, in this order, a ``before_request`` hook that answers
413 when ``Content-Length`` is over the route's limit (before anything reads
the body), and the app's CSRF protection (:class:`BodyFreeCSRFProtect`), which
takes an upload route's token from the header or the query string, never from
the body. A body without a length (chunked) is cut at the limit while it is
read (werkzeug's ``LimitedStream``, the request's ``max_content_length``).
Every 413 names the limit and its setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_wtf import CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sdi.admin import errors
from sdi.settings import Settings

__all__ = [
    "BodyFreeCSRFProtect",
    "accepts_upload",
    "body_limit",
    "human_bytes",
    "init_app",
    "is_upload_route",
    "page_upload",
    "too_large_message",
]

#: A view attribute: the route may receive a body up to SDI_MAX_UPLOAD_BYTES.
_UPLOAD = "sdi_accepts_upload"
#: A view attribute: the route's CSRF token is read from the header or the query.
_CSRF_OUTSIDE = "sdi_csrf_outside_body"


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


def too_large_message(limit: int, *, upload: bool = True) -> str:
    """What a 413 says: the limit, its setting, and what to do."""
    if upload:
        return (
            f"The upload is larger than this server accepts ({human_bytes(limit)}, "
            "SDI_MAX_UPLOAD_BYTES). Split the data into several layers, or ask the "
            "operator to raise the limit."
        )
    return (
        f"The request body is larger than this address accepts ({human_bytes(limit)}, "
        "SDI_MAX_FORM_BYTES). Files are uploaded as a new version of a layer "
        "(POST /admin/layers/<id>/versions, or /admin/api/layers/<id>/versions)."
    )


def accepts_upload[V: Callable[..., Any]](view: V) -> V:
    """Let ``view`` receive bodies up to SDI_MAX_UPLOAD_BYTES.

    Only for views that check their caller before reading the body (the JSON
    API's bearer-token routes); pages use :func:`page_upload`.
    """
    setattr(view, _UPLOAD, True)
    return view


def page_upload[V: Callable[..., Any]](view: V) -> V:
    """A page route that receives a file: large bodies, CSRF token outside the body.

    Put it under ``@login_required``, which refuses anonymous callers before
    the view runs; the CSRF check (before any view) reads the token from the
    ``X-CSRFToken`` header or the ``csrf_token`` query parameter.
    """
    setattr(view, _CSRF_OUTSIDE, True)
    return accepts_upload(view)


def _view(app: Flask, endpoint: str | None) -> Callable[..., Any] | None:
    if endpoint is None:  # no route matched (404, 405)
        return None
    return app.view_functions.get(endpoint)


def is_upload_route(app: Flask, endpoint: str | None) -> bool:
    """Whether the route ``endpoint`` of ``app`` may receive a large body."""
    return bool(getattr(_view(app, endpoint), _UPLOAD, False))


def body_limit(app: Flask, endpoint: str | None) -> int:
    """The largest body the route ``endpoint`` of ``app`` accepts, in bytes."""
    config: Settings = app.extensions["sdi_settings"]
    if is_upload_route(app, endpoint):
        return config.max_upload_bytes
    return config.max_form_bytes


class BodyFreeCSRFProtect(CSRFProtect):  # type: ignore[misc]
    """Flask-WTF's CSRF protection, never reading an upload route's body.

    Flask-WTF looks for the token in the form first, which parses (and, for
    file parts, writes) the whole body before the check. Routes made with
    :func:`page_upload` take the token from the headers Flask-WTF knows
    (``WTF_CSRF_HEADERS``) or the ``csrf_token`` query parameter instead; the
    rest of the check (signature, age, session, referrer on https) is
    Flask-WTF's. ``_get_csrf_token`` is Flask-WTF's own lookup (1.3.0, pinned);
    ``tests/admin/test_bodies.py`` fails if a new version reads the body again.
    """

    def _get_csrf_token(self) -> str | None:
        view = _view(current_app, request.endpoint)
        if not getattr(view, _CSRF_OUTSIDE, False):
            token: str | None = super()._get_csrf_token()
            return token
        for header in current_app.config["WTF_CSRF_HEADERS"]:
            if value := request.headers.get(header):
                return value
        return request.args.get(current_app.config["WTF_CSRF_FIELD_NAME"]) or None


def _refuse_oversized() -> None:
    """413 before anything reads a body whose declared length is over the limit."""
    length = request.content_length
    if length is not None and length > body_limit(current_app, request.endpoint):
        raise RequestEntityTooLarge()


def _too_large(
    exc: RequestEntityTooLarge,
) -> Response | HTTPException | tuple[str, int]:
    """Every 413 (declared length, or a chunked body cut off) names its limit."""
    limit = body_limit(current_app, request.endpoint)
    length = request.content_length
    if length is not None and length <= limit:  # werkzeug's form limits, not ours
        message = (
            "The form has too many fields or files, or a field too long for "
            "this server."
        )
    else:
        upload = is_upload_route(current_app, request.endpoint)
        message = too_large_message(limit, upload=upload)
    return errors.handle_http_error(RequestEntityTooLarge(message))


def init_app(app: Flask) -> BodyFreeCSRFProtect:
    """Install the body limits, then CSRF protection, on ``app``; return the latter.

    The limit check is registered first so that it runs before the CSRF check
    (the first reader of a form's body).
    """
    app.before_request(_refuse_oversized)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    return BodyFreeCSRFProtect(app)
