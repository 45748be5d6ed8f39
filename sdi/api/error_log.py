"""Logging the OGC API's error responses at the level they deserve.

pygeoapi's ``API.get_exception``, through which every OGC exception response
goes (pygeoapi's handlers and sdi's), logged each one at ERROR, with a
traceback when it was called while handling an exception: every 400 for a
mistyped ``bbox`` looked like a server failure. Here a client error (4xx) is
one INFO line without a traceback, a 503 (load shed: every render slot taken,
or a file swapped under a worker; the client is told to retry) one WARNING
line without a traceback, and any other server error (5xx) an ERROR line with
the traceback of the exception being handled, if any.
"""

from __future__ import annotations

import logging
import sys
from http import HTTPStatus
from typing import Any

from flask import has_request_context, request
from pygeoapi.api import API

__all__ = ["install", "log_error"]

LOGGER = logging.getLogger(__name__)
_PYGEOAPI_LOGGER = "pygeoapi.api"


def log_error(status: int, code: str, description: str) -> None:
    """Log an error response: 4xx at INFO, 503 at WARNING, other 5xx at ERROR
    with the traceback."""
    where = f" on {request.method} {request.path}" if has_request_context() else ""
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        # Refused under load with Retry-After: a flood of these must not
        # flood the log with tracebacks.
        LOGGER.warning("%s %s%s: %s", status, code, where, description)
    elif status >= 500:
        handling = sys.exc_info()[0] is not None
        LOGGER.error("%s %s%s: %s", status, code, where, description, exc_info=handling)
    else:
        LOGGER.info("%s %s%s: %s", status, code, where, description)


#: pygeoapi's methods whose ERROR records :func:`log_error` replaces.
_REPLACED = frozenset({"get_exception", "get_format_exception"})


class _NotFromGetException(logging.Filter):
    """Drops the records of pygeoapi's ``get_exception`` (logged here instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.funcName not in _REPLACED


def install() -> None:
    """Log through :func:`log_error` instead of pygeoapi (idempotent)."""
    if getattr(API.get_exception, "_sdi_logged", False):
        return
    original = API.get_exception

    def get_exception(
        self: API, status: int, headers: dict[str, Any], format_: str | None,
        code: str, description: str,
    ) -> Any:  # fmt: skip
        log_error(int(status), code, description)
        return original(self, status, headers, format_, code, description)

    get_exception._sdi_logged = True  # type: ignore[attr-defined]
    API.get_exception = get_exception  # type: ignore[method-assign]
    logging.getLogger(_PYGEOAPI_LOGGER).addFilter(_NotFromGetException())
