"""Signing in and out, session expiry, and the signed-in user's own account page.

Sessions are server-side (``sdi.registry.sessions``): the signed cookie holds
the session's random id as Flask-Login's user id, and each request checks its
row (one statement). A session ends :data:`SESSION_ABSOLUTE` after sign-in
and after :data:`SESSION_IDLE` without a request; every session of the user,
in every browser, ends on sign-out, a password change or reset, a role change
and a deactivation. Failed sign-ins back off (``sdi.registry.throttle``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
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
from sdi.errors import BadInputError
from sdi.registry import sessions, tokens, users
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
SESSION_ABSOLUTE = sessions.ABSOLUTE
#: A session ends after this long without a request.
SESSION_IDLE = sessions.IDLE


class SessionUser(UserMixin):  # type: ignore[misc]
    """The signed-in user and their server-side session, as Flask-Login sees them."""

    def __init__(self, user: User, session_id: str) -> None:
        self.user = user
        self.session_id = session_id

    def get_id(self) -> str:
        """Flask-Login's key in the cookie: the session's id, not the user's."""
        return self.session_id


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
    """Flask-Login for ``app``: server-side sessions of active users."""
    login = LoginManager(app)
    login.login_view = "auth.login"

    @login.user_loader
    def load_user(session_id: str) -> SessionUser | None:
        with pool(app).connection() as conn:
            user = sessions.resume(conn, session_id)
        return SessionUser(user, session_id) if user is not None else None

    login.unauthorized_handler(_to_login)

    @app.before_request
    def ended_session() -> Response | None:
        """A cookie whose session has ended: forget it and say so."""
        if is_api_request() or request.endpoint in (None, "static"):
            return None
        if "_user_id" not in session or current_user.is_authenticated:
            return None
        session.clear()
        flash("Your session has ended; please sign in again.", "info")
        if request.endpoint == "auth.login":
            return None  # already on the way in
        return _to_login()


def _start_session(user: User) -> None:
    """Sign ``user`` in on this browser with a fresh server-side session."""
    session.clear()  # nothing from before sign-in survives (session fixation)
    with pool(current_app).connection() as conn:
        session_id = sessions.create(
            conn,
            user,
            user_agent=request.user_agent.string,
            address=_client_ip(),
        )
    login_user(SessionUser(user, session_id))
    session.permanent = True


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
            _start_session(user)
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
    """Sign out (POST with CSRF token): every session of the user ends for good,
    in every browser (a copied or replayed cookie opens nothing); audited."""
    with pool(current_app).connection() as conn:
        ended = users.sign_out(conn, me())
    logout_user()
    session.clear()
    others = ended - 1
    flash(
        "You are signed out"
        + (f", here and in {others} other browser(s)." if others > 0 else "."),
        "info",
    )
    return redirect(url_for("auth.login"))


# ------------------------------------------------------------ own account


class PasswordForm(FlaskForm):  # type: ignore[misc]
    """Change one's own password."""

    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField(
        "New password", validators=[DataRequired(), Length(min=10, max=500)]
    )


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
        live = sessions.list_sessions(conn, me(), current_user.session_id)
    return render_template(
        "account.html",
        password_form=password_form,
        token_form=token_form,
        tokens=mine,
        sessions=live,
        new_token=new_token,
    )


@bp.route("/account")
@login_required
def account() -> str:
    """The signed-in user's account: password, sessions, personal API tokens."""
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
    _start_session(user)  # every session ended; this browser gets a new one
    flash(
        "Your password is changed. You are signed out everywhere else and "
        "your API tokens are revoked.",
        "success",
    )
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
