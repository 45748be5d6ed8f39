"""Security headers of the admin app (every response under ``/admin``).

A Content-Security-Policy without ``'unsafe-inline'``: the pages' scripts are
files in ``sdi/admin/static`` that read their data from ``data-`` attributes,
and styles live in its stylesheets. ``frame-ancestors 'none'`` (and
``X-Frame-Options: DENY`` for older browsers) keeps the admin pages out of
other sites' frames. Also ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin`` (Flask-WTF checks the referrer of forms
posted over https, so it must reach this server) and HSTS when
``SDI_BASE_URL`` is https.

Responses that set no caching rule of their own (static files and downloads
do) are ``Cache-Control: no-store``: pages show new API tokens and keys once,
and personal data always; no browser cache or proxy should keep them.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

from sdi.settings import Settings

__all__ = [
    "HSTS",
    "AdminOnlySessionInterface",
    "content_security_policy",
    "register",
    "security_headers",
]

#: Strict-Transport-Security when the public URL is https (one year).
HSTS = "max-age=31536000"


def content_security_policy(settings: Settings) -> str:
    """The admin app's Content-Security-Policy for ``settings``."""
    basemap = f" {settings.basemap_origin}" if settings.basemap_origin else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{basemap}",
            f"connect-src 'self'{basemap}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers every admin response carries."""
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if settings.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    return headers


class AdminOnlySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie's ``Path`` the admin app's
    mount point (``/admin`` under ``sdi serve``), so browsers never send the
    session to the public pages that share the origin."""

    def get_cookie_path(self, app: Flask) -> str:
        """The script root the admin app is served under (``/`` when alone)."""
        return request.script_root or "/"


def register(app: Flask, settings: Settings) -> None:
    """Add the security headers to every response of ``app``, and scope its
    session cookie to the app's own path."""
    app.session_interface = AdminOnlySessionInterface()
    headers = security_headers(settings)

    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        static = (request.endpoint or "").rpartition(".")[2] == "static"
        if "Cache-Control" not in response.headers and not static:
            response.headers["Cache-Control"] = "no-store"
        return response
