"""API keys on the OGC API: which restricted layers a request may see.

A client presents a key in the ``X-API-Key`` header or the ``api_key`` query
parameter (GIS clients that cannot set headers; the parameter is carried into
``next`` links). :func:`request_grants` turns it into the set of restricted
collection ids it opens; :class:`sdi.api.live.LiveApi` then serves an ``API``
object holding the public collections plus exactly those. Without a key a
restricted layer does not exist: not listed, not served, not in the catalogue
or the OpenAPI document.

An unknown, expired or revoked key is a 401, not a silent public view: the
client should learn that its key no longer works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import g, request

from sdi.errors import SdiError

if TYPE_CHECKING:
    from sdi.api.live import LiveApi

__all__ = [
    "API_KEY_HEADER",
    "API_KEY_PARAM",
    "InvalidApiKeyError",
    "presented_key",
    "request_grants",
]

API_KEY_HEADER = "X-API-Key"
API_KEY_PARAM = "api_key"


class InvalidApiKeyError(SdiError):
    """The request carries an API key that opens nothing."""

    status = 401
    code = "InvalidApiKey"


def presented_key() -> str | None:
    """The API key of the current request, if it carries one."""
    key = request.headers.get(API_KEY_HEADER) or request.args.get(API_KEY_PARAM)
    return key.strip() if key and key.strip() else None


def request_grants(live: LiveApi) -> frozenset[str]:
    """Restricted collection ids the request's key opens (cached per request)."""
    cached: frozenset[str] | None = g.get("sdi_grants")
    if cached is not None:
        return cached
    key = presented_key()
    grants: frozenset[str] = frozenset()
    if key is not None:
        found = live.key_grants(key)
        if found is None:
            raise InvalidApiKeyError(
                "This API key is unknown, expired or revoked; ask the data owner "
                "for a valid key, or leave it out to see the public collections."
            )
        grants = found
    g.sdi_grants = grants
    return grants
