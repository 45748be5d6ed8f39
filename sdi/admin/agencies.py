"""Agencies pages (platform admins): register departments, edit names and contact."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Length, Optional

from sdi import registry
from sdi.admin.auth import me
from sdi.admin.db import pool
from sdi.errors import BadInputError, ConflictError
from sdi.registry import permissions
from sdi.registry.permissions import Action

__all__ = ["bp"]

bp = Blueprint("agencies", __name__, url_prefix="/agencies")


class AgencyForm(FlaskForm):  # type: ignore[misc]
    """An agency's bilingual names and contact."""

    name_en = StringField(
        "Name (English)", validators=[DataRequired(), Length(max=200)]
    )
    name_zh = StringField("名稱 (中文)", validators=[Length(max=200)])
    contact_email = EmailField(
        "Contact e-mail", validators=[Optional(), Length(max=254)]
    )


class NewAgencyForm(AgencyForm):
    """A new agency: its code too."""

    code = StringField(
        "Code (2-16 lower-case letters or digits, e.g. landsd)",
        validators=[DataRequired(), Length(min=2, max=16)],
    )


def _require() -> None:
    permissions.require(me(), Action.MANAGE_AGENCIES)


def _index(form: NewAgencyForm, status: int = 200) -> tuple[str, int]:
    with pool(current_app).connection() as conn:
        agencies = registry.list_agencies(conn)
    return render_template("agencies.html", agencies=agencies, form=form), status


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    """Every agency, and a form to add one."""
    _require()
    return _index(NewAgencyForm())


@bp.route("/", methods=["POST"])
@login_required
def create() -> Response | tuple[str, int]:
    """Register an agency."""
    _require()
    form = NewAgencyForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    try:
        with pool(current_app).connection() as conn:
            agency = registry.create_agency(
                conn,
                form.code.data.strip(),
                form.name_en.data.strip(),
                (form.name_zh.data or "").strip(),
                (form.contact_email.data or "").strip(),
                by=me(),
            )
    except (BadInputError, ConflictError) as exc:
        flash(exc.message, "error")
        return _index(form, exc.status)
    flash(f"Agency {agency.code} is registered.", "success")
    return redirect(url_for("agencies.index"))


def _detail(
    code: str, form: AgencyForm | None = None, status: int = 200
) -> tuple[str, int]:
    with pool(current_app).connection() as conn:
        agency = registry.get_agency(conn, code)
    if form is None:
        form = AgencyForm(
            formdata=None,
            name_en=agency.name_en,
            name_zh=agency.name_zh,
            contact_email=agency.contact_email,
        )
    return render_template("agency.html", agency=agency, form=form), status


@bp.route("/<code>")
@login_required
def detail(code: str) -> tuple[str, int]:
    """Edit one agency."""
    _require()
    return _detail(code)


@bp.route("/<code>", methods=["POST"])
@login_required
def update(code: str) -> Response | tuple[str, int]:
    """Save an agency's names and contact."""
    _require()
    form = AgencyForm()
    if not form.validate_on_submit():
        return _detail(code, form, 400)
    try:
        with pool(current_app).connection() as conn:
            registry.update_agency(
                conn,
                me(),
                code,
                name_en=form.name_en.data,
                name_zh=form.name_zh.data or "",
                contact_email=form.contact_email.data or "",
            )
    except BadInputError as exc:
        flash(exc.message, "error")
        return _detail(code, form, exc.status)
    flash("Saved.", "success")
    return redirect(url_for("agencies.detail", code=code))
