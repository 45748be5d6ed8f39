"""Signing in and out, session expiry, and the signed-in user's own account page.

Sessions end :data:`SESSION_ABSOLUTE` after sign-in, after :data:`SESSION_IDLE`
without a request, when the account is deactivated, and when its password
changes. Failed sign-ins are throttled (``sdi.registry.throttle``).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DateField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from sdi.admin.db import pool
from sdi.admin.errors import is_api_request
from sdi.errors import BadInputError, NotFoundError
from sdi.registry import tokens, users
from sdi.registry.models import User
from sdi.registry.throttle import TooManyAttemptsError

__all__ = [
    "SESSION_ABSOLUTE",
    "SESSION_IDLE",
    "SessionUser",
    "bp",
    "end_of_day",
    "init_login",
    "me",
]

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


def me() -> User:
    """The signed-in registry user (inside ``@login_required`` views)."""
    user: User = current_user.user
    return user


def _local_next(target: str | None) -> str | None:
    """``target`` if it is a path inside this app (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def _to_login() -> Response:
    """Redirect to the sign-in page, coming back here afterwards (GET only)."""
    if request.method != "GET":  # a form's target makes no sense to return to
        return redirect(url_for("auth.login"))
    query = request.query_string.decode()
    target = request.path + (f"?{query}" if query else "")
    return redirect(url_for("auth.login", next=target))


def init_login(app: Flask) -> None:
    """Flask-Login for ``app``: active users only; sessions that expire."""
    login = LoginManager(app)
    login.login_view = "auth.login"

    @login.user_loader
    def load_user(user_id: str) -> SessionUser | None:
        with pool(app).connection() as conn:
            try:
                user = users.get_user(conn, int(user_id))
            except (NotFoundError, ValueError):
                return None
        return SessionUser(user) if user.active else None

    login.unauthorized_handler(_to_login)

    @app.before_request
    def expire_session() -> Response | None:
        if is_api_request() or request.endpoint in (None, "static"):
            return None
        if not current_user.is_authenticated:
            return None
        now = time.time()
        login_at = float(session.get("login_at", 0))
        seen_at = float(session.get("seen_at", 0))
        if (
            now - login_at > SESSION_ABSOLUTE.total_seconds()
            or now - seen_at > SESSION_IDLE.total_seconds()
            or session.get("fp") != users.session_fingerprint(me())
        ):
            logout_user()
            session.clear()
            flash("Your session has ended; please sign in again.", "info")
            if request.endpoint == "auth.login":
                return None  # already on the way in
            return _to_login()
        session["seen_at"] = now
        return None


class LoginForm(FlaskForm):  # type: ignore[misc]
    """E-mail and password."""

    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def _client_ip() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form; sign in on a valid POST (throttled)."""
    form = LoginForm()
    status, retry_after = 200, 0
    if form.validate_on_submit():
        try:
            with pool(current_app).connection() as conn:
                user = users.authenticate(
                    conn, form.email.data, form.password.data, _client_ip()
                )
        except TooManyAttemptsError as exc:
            flash(exc.message, "error")
            status, retry_after = exc.status, exc.retry_after
        except BadInputError as exc:
            flash(exc.message, "error")
        else:
            session.clear()
            login_user(SessionUser(user))
            session.permanent = True
            now = time.time()
            session["login_at"] = now
            session["seen_at"] = now
            session["fp"] = users.session_fingerprint(user)
            target = _local_next(request.args.get("next"))
            if target:
                return redirect(request.script_root + target)
            return redirect(url_for("layers.index"))
    page = render_template("login.html", form=form)
    if status == TooManyAttemptsError.status:
        return Response(
            page,
            status,
            headers={"Retry-After": str(retry_after)},
            mimetype="text/html",
        )
    return page, status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Sign out (POST with CSRF token); audited."""
    with pool(current_app).connection() as conn:
        users.record_logout(conn, me())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


# ------------------------------------------------------------ own account


class PasswordForm(FlaskForm):  # type: ignore[misc]
    """Change one's own password."""

    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=10)])


class TokenForm(FlaskForm):  # type: ignore[misc]
    """Create a personal API token."""

    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    expires = DateField("Expires on (optional)", validators=[Optional()])


def end_of_day(day: date | None) -> datetime | None:
    """The end (UTC) of a form's date: the moment a key or token stops working."""
    if day is None:
        return None
    return datetime.combine(day, dt_time(23, 59, 59), tzinfo=UTC)


def _account_page(
    password_form: PasswordForm, token_form: TokenForm, new_token: str | None = None
) -> str:
    with pool(current_app).connection() as conn:
        mine = tokens.list_tokens(conn, me())
    return render_template(
        "account.html",
        password_form=password_form,
        token_form=token_form,
        tokens=mine,
        new_token=new_token,
    )


@bp.route("/account")
@login_required
def account() -> str:
    """The signed-in user's account: password and personal API tokens."""
    return _account_page(PasswordForm(), TokenForm())


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password() -> str | Response | tuple[str, int]:
    """Change one's own password (needs the current one)."""
    form = PasswordForm()
    if not form.validate_on_submit():
        return _account_page(form, TokenForm()), 400
    try:
        with pool(current_app).connection() as conn:
            user = users.change_password(conn, me(), form.current.data, form.new.data)
    except BadInputError as exc:
        flash(exc.message, "error")
        return _account_page(form, TokenForm()), 400
    session["fp"] = users.session_fingerprint(user)
    flash("Your password is changed.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token() -> str | tuple[str, int]:
    """Create a personal API token; the page shows it once."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _account_page(PasswordForm(), form), 400
    try:
        with pool(current_app).connection() as conn:
            _, token = tokens.create_token(
                conn,
                me(),
                form.name.data,
                expires_at=end_of_day(form.expires.data),
            )
    except BadInputError as exc:
        flash(exc.message, "error")
        return _account_page(PasswordForm(), form), 400
    return _account_page(PasswordForm(), TokenForm(formdata=None), new_token=token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Response:
    """Revoke one of one's own tokens."""
    with pool(current_app).connection() as conn:
        token = tokens.revoke_token(conn, me(), token_id)
    flash(f"Token {token.name!r} is revoked.", "success")
    return redirect(url_for("auth.account"))
