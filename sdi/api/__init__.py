"""The OGC API WSGI app around pygeoapi.

``create_app(settings)`` builds a Flask app that serves the current
publication and follows publishes and rollbacks without restarting.
"""

from sdi.api.app import EXTENSION_KEY, create_app, live_api
from sdi.api.live import RELOAD_INTERVAL_S, ApiUnavailableError, LiveApi

__all__ = [
    "EXTENSION_KEY",
    "RELOAD_INTERVAL_S",
    "ApiUnavailableError",
    "LiveApi",
    "create_app",
    "live_api",
]
