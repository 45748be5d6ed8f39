"""Admin app factory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from sdi import registry
from sdi.admin.auth import SessionUser
from sdi.admin.auth import bp as auth_bp
from sdi.admin.db import pool
from sdi.admin.layers import bp as layers_bp
from sdi.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> Flask:
    """A configured admin app; its database pool opens on first use."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
    )
    app.extensions["sdi_settings"] = settings
    CSRFProtect(app)
    login = LoginManager(app)
    login.login_view = "auth.login"

    @login.user_loader
    def load_user(user_id: str) -> SessionUser | None:
        with pool(app).connection() as conn:
            row = conn.execute(
                "SELECT email FROM sdi.users WHERE id = %s AND active", (int(user_id),)
            ).fetchone()
            if row is None:
                return None
            user = registry.get_user_by_email(conn, row[0])
        return SessionUser(user) if user else None

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"public_url": settings.public_url}

    app.register_blueprint(auth_bp)
    app.register_blueprint(layers_bp)
    return app
