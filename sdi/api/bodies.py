"""The OGC API takes no request bodies: anything over a small limit is a 413, unread.

Every route of the OGC API is a GET, but pygeoapi's ``APIRequest.from_flask``
reads ``request.data`` on every request, so a GET carrying a body held all of
it in memory, before any check, once per busy thread. The app's
``MAX_CONTENT_LENGTH`` is ``SDI_MAX_FORM_BYTES``: a declared length over it is
refused before the body is read, and a chunked body is read up to the limit
(werkzeug's ``LimitedStream`` stops there) and refused if it reaches it.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from sdi.api.error_log import log_error
from sdi.api.runtime import ogc_error
from sdi.settings import Settings

__all__ = ["install", "too_large_message"]


def too_large_message(limit: int) -> str:
    """What the 413 says."""
    return (
        f"The OGC API takes no request body larger than {limit:,} bytes "
        "(SDI_MAX_FORM_BYTES); send the query in the URL."
    )


def install(app: Flask, settings: Settings) -> None:
    """Limit the request bodies of ``app`` to ``SDI_MAX_FORM_BYTES``."""
    limit = settings.max_form_bytes
    app.config["MAX_CONTENT_LENGTH"] = limit

    @app.before_request
    def _refuse_large_bodies() -> None:
        length = request.content_length
        if length is not None and length > limit:
            raise RequestEntityTooLarge(too_large_message(limit))
        # A chunked body: at most ``limit`` bytes are read (and kept for
        # pygeoapi's ``request.data``); werkzeug stops there without saying
        # whether more followed.
        chunked = length is None and request.headers.get("Transfer-Encoding")
        if chunked and len(request.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge(too_large_message(limit))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        # The same words for a chunked body cut off while it was read.
        message = too_large_message(limit)
        log_error(413, "PayloadTooLarge", message)
        return ogc_error(413, "PayloadTooLarge", message)
