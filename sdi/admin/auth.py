"""Signing in and out."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import (
    LoginManager,
    UserMixin,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from sdi import registry
from sdi.admin.db import pool
from sdi.registry.models import User
from sdi.registry.passwords import check_password

__all__ = ["SESSION_ABSOLUTE", "SESSION_IDLE", "SessionUser", "bp", "init_login"]

bp = Blueprint("auth", __name__)

#: A session ends this long after sign-in, however active.
SESSION_ABSOLUTE = timedelta(hours=8)
#: A session ends after this long without a request.
SESSION_IDLE = timedelta(minutes=30)


class SessionUser(UserMixin):  # type: ignore[misc]
    """The signed-in user, as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        """Flask-Login's session key."""
        return str(self.user.id)


def init_login(app: Flask) -> None:
    """Flask-Login for ``app``: loads active users only."""
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


class LoginForm(FlaskForm):  # type: ignore[misc]
    """E-mail and password."""

    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """Show the sign-in form; sign in on a valid POST."""
    form = LoginForm()
    if form.validate_on_submit():
        with pool(current_app).connection() as conn:
            user = registry.get_user_by_email(conn, form.email.data)
            ok = (
                user is not None
                and user.active
                and check_password(user.password_hash, form.password.data)
            )
            if ok and user is not None:
                registry.audit.record(
                    conn, "login", "user", user.email, actor=user.email, user_id=user.id
                )
        if ok and user is not None:
            login_user(SessionUser(user))
            target = request.args.get("next", "")
            # Only local paths: never redirect to another site.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("layers.index")
            return redirect(target)
        flash("Wrong e-mail or password.", "error")
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Sign out (POST with CSRF token)."""
    logout_user()
    return redirect(url_for("auth.login"))
