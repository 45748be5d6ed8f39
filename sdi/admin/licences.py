"""The licence list (platform admins): add licences, edit them; none is deleted."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField, URLField
from wtforms.validators import DataRequired, Length, Optional

from sdi import registry
from sdi.admin.auth import me
from sdi.admin.db import pool
from sdi.errors import BadInputError, ConflictError
from sdi.registry import permissions
from sdi.registry.licences import LICENCE_FIELDS
from sdi.registry.permissions import Action

__all__ = ["bp"]

bp = Blueprint("licences", __name__, url_prefix="/licences")


class LicenceForm(FlaskForm):  # type: ignore[misc]
    """What a licence says."""

    name_en = StringField(
        "Name (English)", validators=[DataRequired(), Length(max=300)]
    )
    name_zh = StringField("名稱 (中文)", validators=[Length(max=300)])
    url = URLField("Terms URL", validators=[Optional(), Length(max=500)])
    attribution_en = StringField("Attribution (English)", validators=[Length(max=300)])
    attribution_zh = StringField("署名 (中文)", validators=[Length(max=300)])
    restricted = BooleanField("Restricted (API key holders only)")


class NewLicenceForm(LicenceForm):
    """A new licence: its code too."""

    code = StringField(
        "Code (lower-case, e.g. cc-by-4.0)",
        validators=[DataRequired(), Length(max=50)],
    )


def _values(form: LicenceForm) -> dict[str, Any]:
    return {name: getattr(form, name).data for name in LICENCE_FIELDS}


def _require() -> None:
    permissions.require(me(), Action.MANAGE_LICENCES)


def _index(form: NewLicenceForm, status: int = 200) -> tuple[str, int]:
    with pool(current_app).connection() as conn:
        licences = registry.list_licences(conn)
    return render_template("licences.html", licences=licences, form=form), status


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    """The licence list and a form to add one."""
    _require()
    return _index(NewLicenceForm())


@bp.route("/", methods=["POST"])
@login_required
def create() -> Response | tuple[str, int]:
    """Add a licence."""
    _require()
    form = NewLicenceForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    try:
        with pool(current_app).connection() as conn:
            licence = registry.create_licence(
                conn, me(), form.code.data.strip(), **_values(form)
            )
    except (BadInputError, ConflictError) as exc:
        flash(exc.message, "error")
        return _index(form, exc.status)
    flash(f"Licence {licence.code} is added.", "success")
    return redirect(url_for("licences.index"))


def _detail(
    code: str, form: LicenceForm | None = None, status: int = 200
) -> tuple[str, int]:
    with pool(current_app).connection() as conn:
        licence = registry.get_licence(conn, code)
    if form is None:
        form = LicenceForm(
            formdata=None, **{name: getattr(licence, name) for name in LICENCE_FIELDS}
        )
    return render_template("licence.html", licence=licence, form=form), status


@bp.route("/<code>")
@login_required
def detail(code: str) -> tuple[str, int]:
    """Edit one licence."""
    _require()
    return _detail(code)


@bp.route("/<code>", methods=["POST"])
@login_required
def update(code: str) -> Response | tuple[str, int]:
    """Save a licence."""
    _require()
    form = LicenceForm()
    if not form.validate_on_submit():
        return _detail(code, form, 400)
    try:
        with pool(current_app).connection() as conn:
            registry.update_licence(conn, me(), code, **_values(form))
    except BadInputError as exc:
        flash(exc.message, "error")
        return _detail(code, form, exc.status)
    flash("Saved.", "success")
    return redirect(url_for("licences.detail", code=code))
