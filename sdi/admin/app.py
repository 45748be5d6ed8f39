"""Admin app factory.

Pages are blueprints: every module of ``sdi.admin`` that defines a module-level
``bp`` (a :class:`flask.Blueprint`) is registered, so a new page module needs
no edit here. The JSON API (``sdi.admin.api``) is mounted at ``/api``.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask

import sdi.admin
from sdi.admin import auth, bodies, errors, security, text_input
from sdi.admin.api import register_api
from sdi.admin.proxies import trust_proxies
from sdi.registry import permissions
from sdi.settings import Settings

__all__ = ["create_app"]

# Modules of sdi.admin that are not page blueprints.
_NOT_PAGES = frozenset(
    {"app", "api", "auth", "bodies", "db", "errors", "proxies", "text_input"}
)


def _page_blueprints() -> list[Blueprint]:
    found = []
    for module in sorted(pkgutil.iter_modules(sdi.admin.__path__), key=str):
        if module.name in _NOT_PAGES or module.ispkg:
            continue
        mod = importlib.import_module(f"sdi.admin.{module.name}")
        blueprint = getattr(mod, "bp", None)
        if isinstance(blueprint, Blueprint):
            found.append(blueprint)
    return found


def create_app(settings: Settings) -> Flask:
    """A configured admin app; its database pool opens on first use."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        PERMANENT_SESSION_LIFETIME=auth.SESSION_ABSOLUTE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        # CSRF tokens live as long as the session may.
        WTF_CSRF_TIME_LIMIT=int(timedelta(hours=8).total_seconds()),
    )
    app.extensions["sdi_settings"] = settings
    csrf = bodies.init_app(app)  # body limits first, then CSRF
    text_input.init_app(app)
    auth.init_login(app)
    errors.register(app)
    security.register(app, settings)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {
            "public_url": settings.public_url,
            "can": permissions.can,
            "Action": permissions.Action,
        }

    app.register_blueprint(auth.bp)
    for blueprint in _page_blueprints():
        app.register_blueprint(blueprint)
    register_api(app, csrf)
    app.wsgi_app = trust_proxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    return app
