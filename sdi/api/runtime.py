"""Running a pygeoapi-shaped handler for the current Flask request.

Handlers (pygeoapi's own API functions and sdi's: :mod:`sdi.api.rasters`,
:mod:`sdi.api.features`, :mod:`sdi.api.vtiles`) have the shape
``f(api, api_request, *args) -> (headers, status, content)``. :func:`execute`
picks the ``API`` object for the request (the current publication, as seen by
the request's API key: :mod:`sdi.api.access`), runs the handler and builds the
Flask response. ``content`` may be ``str``, ``bytes`` or an iterator of
``bytes`` (streamed to the client as it is produced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, current_app, make_response, request
from pygeoapi.api import API, APIRequest, apply_gzip
from werkzeug.datastructures import Headers

from sdi.api import l10n_scope
from sdi.api.access import request_grants
from sdi.api.live import LiveApi

__all__ = [
    "EXTENSION_KEY",
    "ApiFunction",
    "Content",
    "execute",
    "live_api",
    "ogc_error",
    "request_api",
]

#: Where the app keeps its :class:`LiveApi` in ``app.extensions``.
EXTENSION_KEY = "sdi_live_api"

Content = str | bytes | Iterator[bytes]
ApiFunction = Callable[..., tuple[dict[str, Any], int, Content]]


def live_api(app: Flask | None = None) -> LiveApi:
    """The :class:`LiveApi` of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    live: LiveApi = target.extensions[EXTENSION_KEY]
    return live


def request_api() -> API:
    """The ``API`` object serving the current request (its key's view)."""
    live = live_api()
    api = live.current(request_grants(live))
    l10n_scope.use(api)
    return api


def ogc_error(status: int, code: str, description: str) -> Response:
    """An OGC exception response (JSON body with code, type, description)."""
    response = make_response(
        {"code": code, "type": code, "description": description}, status
    )
    response.headers["Content-Type"] = "application/json"
    return response


def execute(
    function: ApiFunction, *args: Any, skip_valid_check: bool = False
) -> Response:
    """Run a pygeoapi-shaped API function for the current request."""
    api = request_api()
    api_request = APIRequest.from_flask(request, api.locales)
    if not skip_valid_check and not api_request.is_valid():
        headers, status, content = api.get_format_exception(api_request)
    else:
        headers, status, content = function(api, api_request, *args)
        if isinstance(content, str | bytes):
            content = apply_gzip(headers, content)
    response = make_response(content, status)
    # The handler's headers win over Flask's defaults (Content-Type above all).
    response.headers.update(Headers(headers or {}))
    return response
