"""Users pages: platform admins manage everyone, agency admins their agency's people.

Every action calls ``sdi.registry.users`` with the signed-in user, which checks
the permission matrix; another agency's users answer 404.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from sdi import registry
from sdi.admin.auth import me
from sdi.admin.db import pool
from sdi.errors import BadInputError, ConflictError, NotFoundError
from sdi.registry import tokens, users
from sdi.registry.models import User

__all__ = ["bp"]

bp = Blueprint("users", __name__, url_prefix="/users")

ROLE_LABELS = {
    "platform_admin": "Platform admin",
    "agency_admin": "Agency admin",
    "agency_editor": "Agency editor",
}


class NewUserForm(FlaskForm):  # type: ignore[misc]
    """A new user of an agency (or a platform admin)."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Length(max=200)])
    # The registry decides who may give which role in which agency (403), so
    # the choices only shape the page.
    role = SelectField("Role", choices=[], validate_choice=False)
    agency = SelectField("Agency", choices=[], validate_choice=False)
    password = PasswordField(
        "Initial password (at least 10 characters, hard to guess)",
        validators=[DataRequired(), Length(min=10, max=500)],
    )


class EditUserForm(FlaskForm):  # type: ignore[misc]
    """Name, role and whether the account may sign in."""

    name = StringField("Name", validators=[Length(max=200)])
    role = SelectField("Role", choices=[], validate_choice=False)
    active = BooleanField("Active (may sign in)")


class ResetPasswordForm(FlaskForm):  # type: ignore[misc]
    """An administrator sets a new password."""

    password = PasswordField(
        "New password (at least 10 characters, hard to guess)",
        validators=[DataRequired(), Length(min=10, max=500)],
    )


def _agency_scope(user: User) -> int | None:
    """The agency whose users ``user`` sees (None: every agency)."""
    return None if user.role == "platform_admin" else user.agency_id


def _role_choices(user: User) -> list[tuple[str, str]]:
    # Least privilege first, so that it is the default.
    roles = reversed(users.assignable_roles(user))
    return [(role, ROLE_LABELS[role]) for role in roles]


def _new_form(user: User, agencies: list[registry.Agency]) -> NewUserForm:
    form = NewUserForm()
    form.role.choices = _role_choices(user)
    scope = _agency_scope(user)
    form.agency.choices = [
        (a.code, f"{a.code} · {a.name_en}")
        for a in agencies
        if scope is None or a.id == scope
    ]
    return form


def _index(form: NewUserForm, status: int = 200) -> tuple[str, int]:
    user = me()
    with pool(current_app).connection() as conn:
        people = users.list_users(conn, user, agency_id=_agency_scope(user))
        agencies = {a.id: a for a in registry.list_agencies(conn)}
    return render_template(
        "users.html",
        people=people,
        agencies=agencies,
        form=form,
        role_labels=ROLE_LABELS,
    ), status


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    """The users the signed-in admin manages, and a form to add one."""
    with pool(current_app).connection() as conn:
        agencies = registry.list_agencies(conn)
    return _index(_new_form(me(), agencies))


@bp.route("/", methods=["POST"])
@login_required
def create() -> Response | tuple[str, int]:
    """Add a user."""
    user = me()
    with pool(current_app).connection() as conn:
        form = _new_form(user, registry.list_agencies(conn))
        # Refuse before validating the form, so an editor gets 403, not 400.
        users.list_users(conn, user, agency_id=_agency_scope(user))
        if not form.validate_on_submit():
            return _index(form, 400)
        try:
            new = users.register_user(
                conn,
                user,
                email=form.email.data,
                password=form.password.data,
                role=form.role.data,
                agency_code=form.agency.data or None,
                name=form.name.data or "",
            )
        except (BadInputError, ConflictError) as exc:
            flash(exc.message, "error")
            return _index(form, exc.status)
        # ForbiddenError / NotFoundError go to the app's error page.
    flash(f"User {new.email} is created.", "success")
    return redirect(url_for("users.index"))


def _detail(
    user_id: int,
    edit: EditUserForm | None = None,
    reset: ResetPasswordForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    user = me()
    with pool(current_app).connection() as conn:
        target = users.get_managed_user(conn, user, user_id)
        agency = (
            users.get_agency_by_id(conn, target.agency_id) if target.agency_id else None
        )
        their_tokens = tokens.list_tokens(conn, user, user_id=target.id)
    if edit is None:
        edit = EditUserForm(
            formdata=None, name=target.name, role=target.role, active=target.active
        )
    edit.role.choices = _role_choices(user)
    return render_template(
        "user.html",
        target=target,
        agency=agency,
        edit=edit,
        reset=reset or ResetPasswordForm(formdata=None),
        tokens=their_tokens,
        role_labels=ROLE_LABELS,
        is_self=target.id == user.id,
    ), status


@bp.route("/<int:user_id>")
@login_required
def detail(user_id: int) -> tuple[str, int]:
    """One user: edit name, role, active; reset the password."""
    return _detail(user_id)


@bp.route("/<int:user_id>", methods=["POST"])
@login_required
def update(user_id: int) -> Response | tuple[str, int]:
    """Change name, role or active flag."""
    user = me()
    form = EditUserForm()
    form.role.choices = _role_choices(user)
    with pool(current_app).connection() as conn:
        users.get_managed_user(conn, user, user_id)  # 404 / 403 before 400
        if not form.validate_on_submit():
            return _detail(user_id, edit=form, status=400)
        try:
            users.update_user(
                conn,
                user,
                user_id,
                name=form.name.data or "",
                role=form.role.data,
                active=bool(form.active.data),
            )
        except BadInputError as exc:
            flash(exc.message, "error")
            return _detail(user_id, edit=form, status=exc.status)
    flash("Saved.", "success")
    return redirect(url_for("users.detail", user_id=user_id))


@bp.route("/<int:user_id>/password", methods=["POST"])
@login_required
def reset_password(user_id: int) -> Response | tuple[str, int]:
    """Set a new password for the user."""
    user = me()
    form = ResetPasswordForm()
    with pool(current_app).connection() as conn:
        target = users.get_managed_user(conn, user, user_id)
        if not form.validate_on_submit():
            return _detail(user_id, reset=form, status=400)
        try:
            users.reset_password(conn, user, user_id, form.password.data)
        except BadInputError as exc:
            flash(exc.message, "error")
            return _detail(user_id, reset=form, status=exc.status)
    flash(f"The password of {target.email} is reset; tell them securely.", "success")
    return redirect(url_for("users.detail", user_id=user_id))


@bp.route("/<int:user_id>/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(user_id: int, token_id: int) -> Response:
    """Revoke one of the user's API tokens (and the tokens minted with it)."""
    user = me()
    with pool(current_app).connection() as conn:
        theirs = {t.id for t in tokens.list_tokens(conn, user, user_id=user_id)}
        if token_id not in theirs:
            raise NotFoundError(f"No token {token_id}.")
        token = tokens.revoke_token(conn, user, token_id)
    flash(f"Token {token.name!r} is revoked.", "success")
    return redirect(url_for("users.detail", user_id=user_id))
