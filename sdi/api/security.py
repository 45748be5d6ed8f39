"""Security headers of the OGC API app (every response).

The public pages share their origin with ``/admin``, so a script injected
into one of them could act in the admin app with the visitor's session. The
pages therefore run under a Content-Security-Policy without
``'unsafe-inline'``: scripts and styles only from this server (sdi's
templates keep theirs in ``/static/sdi``; data reaches scripts through JSON
blocks), images also as ``data:`` URIs, and the basemap's host
(``SDI_BASEMAP_URL``) for map tiles. Public pages may be framed by other
sites (maps embedded in an agency's page); the admin app may not
(:mod:`sdi.admin.security`).

Also: ``X-Content-Type-Options: nosniff``, a ``Referrer-Policy``, HSTS when
``SDI_BASE_URL`` is https, no ``X-Powered-By`` (pygeoapi names itself and
its version), and (:func:`allow_preflight`) CORS preflights that allow the
``X-API-Key`` header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from sdi.settings import Settings

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "HSTS",
    "allow_preflight",
    "content_security_policy",
    "register",
    "security_headers",
]

#: Request headers a cross-origin script may send (the CORS preflight answer).
CORS_ALLOWED_HEADERS = "Accept, Accept-Language, Content-Type, If-None-Match, X-API-Key"
#: The policy of responses that are not pages (JSON, tiles, images, scripts):
#: nothing in them may load or run anything, should a browser show one.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
#: Media types rendered as documents, which get the full page policy.
_PAGE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml")
#: Strict-Transport-Security when the public URL is https (one year).
HSTS = "max-age=31536000"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: Settings) -> str:
    """The OGC API's Content-Security-Policy for ``settings``."""
    own = " ".join(
        dict.fromkeys(s for s in ("'self'", _origin(settings.public_url)) if s)
    )
    basemap = f" {settings.basemap_origin}" if settings.basemap_origin else ""
    return "; ".join(
        [
            f"default-src {own}",
            f"script-src {own}",
            f"style-src {own}",
            f"img-src {own} data: blob:{basemap}",
            f"connect-src {own}{basemap}",
            f"font-src {own} data:",
            f"worker-src {own} blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ]
    )


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers every OGC API response carries."""
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if settings.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    return headers


def register(app: Flask, settings: Settings) -> None:
    """Add the security headers to every response of ``app``."""
    headers = security_headers(settings)

    data_headers = {**headers, "Content-Security-Policy": DATA_POLICY}

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.pop("X-Powered-By", None)
        # The pages' policy is long (~450 bytes); data (JSON, tiles, images)
        # is never a document that runs anything, so it gets the short one.
        page = response.headers.get("Content-Type", "").startswith(_PAGE_TYPES)
        for name, value in (headers if page else data_headers).items():
            response.headers[name] = value
        return response


def allow_preflight(response: Response) -> None:
    """Complete ``response`` to a CORS preflight: the headers and methods allowed.

    Browsers send a preflight (``OPTIONS``) before a cross-origin request
    with a header outside the CORS-safelisted ones, such as ``X-API-Key``.
    """
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Max-Age"] = "600"
