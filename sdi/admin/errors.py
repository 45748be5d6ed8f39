"""One error handler for the admin app: HTML pages for people, JSON for ``/api/``.

Every :class:`~sdi.errors.SdiError` carries its HTTP status and message; the
handler only decides the form. JSON errors look like
``{"error": {"code": "NotFound", "message": "No layer 'x'."}}``.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from sdi.errors import SdiError

__all__ = ["UnauthorizedError", "is_api_request", "json_error", "register"]

LOGGER = logging.getLogger(__name__)


class UnauthorizedError(SdiError):
    """No valid credentials (JSON API: missing, unknown, expired or revoked token)."""

    status: ClassVar[int] = 401
    code: ClassVar[str] = "Unauthorized"


def is_api_request() -> bool:
    """Whether this request is for the JSON API (``/admin/api/...``)."""
    return request.path == "/api" or request.path.startswith("/api/")


def json_error(status: int, code: str, message: str) -> Response:
    """A JSON error response with ``status``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="sdi"'
    return response


def _http_code(exc: HTTPException) -> str:
    return "".join(part.capitalize() for part in (exc.name or "Error").split())


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), (
        status
    )


def _log(status: int, message: str) -> None:
    """A client error (4xx) at INFO without a traceback; a 5xx at ERROR with one."""
    where = f"{request.method} {request.path}"
    if status >= 500:
        LOGGER.error("%s on %s: %s", status, where, message, exc_info=True)
    else:
        LOGGER.info("%s on %s: %s", status, where, message)


def handle_sdi_error(exc: SdiError) -> Response | tuple[str, int]:
    """An :class:`SdiError` as JSON (API) or as an HTML page (UI)."""
    _log(exc.status, exc.message)
    if is_api_request():
        return json_error(exc.status, exc.code, exc.message)
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict"}
    return _page(exc.status, titles.get(exc.status, "Cannot do this"), exc.message)


def handle_http_error(exc: HTTPException) -> Response | HTTPException | tuple[str, int]:
    """werkzeug's errors (404 of unknown URLs, 405, 413, CSRF's 400)."""
    if isinstance(exc, CSRFError):
        message = (
            "The form was missing its security token or it expired. "
            "Reload the page and try again."
        )
    else:
        message = exc.description or exc.name
    status = exc.code or 500
    if status >= 400:
        _log(status, message)
    if is_api_request():
        response = json_error(status, _http_code(exc), message)
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
    if status < 400:  # redirects raised as exceptions (e.g. RequestRedirect)
        return exc
    return _page(status, exc.name, message)


def handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    """Anything else is a bug: log it, answer 500 without details."""
    LOGGER.exception("unhandled error on %s %s", request.method, request.path)
    message = "Something went wrong on the server; the error has been logged."
    if is_api_request():
        return json_error(500, "InternalServerError", message)
    return _page(500, "Server error", message)


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(SdiError, handle_sdi_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
