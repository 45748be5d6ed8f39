"""API keys pages: an agency admin creates keys for restricted layers, grants, revokes.

A new key is shown once, on the page answering the form (never stored in the
session cookie or anywhere else). Keys of another agency answer 404.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DateField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length, Optional

from sdi import registry
from sdi.admin.auth import end_of_day, me
from sdi.admin.db import pool
from sdi.errors import BadInputError, NotFoundError
from sdi.registry import apikeys
from sdi.registry.models import Agency, Layer, User

__all__ = ["bp"]

bp = Blueprint("keys", __name__, url_prefix="/keys")


class LayerChoices(SelectMultipleField):  # type: ignore[misc]
    """Checkboxes, one per layer."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class NewKeyForm(FlaskForm):  # type: ignore[misc]
    """A key's name, the layers it opens and an optional expiry."""

    name = StringField(
        "Name (who or what uses it)", validators=[DataRequired(), Length(max=100)]
    )
    layers = LayerChoices("Layers it opens", choices=[])
    expires = DateField("Expires at the end of (optional)", validators=[Optional()])


class GrantsForm(FlaskForm):  # type: ignore[misc]
    """The layers a key opens."""

    layers = LayerChoices("Layers it opens", choices=[])


def _layer_choices(layers: list[Layer]) -> list[tuple[str, str]]:
    return [
        (layer.slug, f"{layer.slug} · {layer.title_en} ({layer.visibility})")
        for layer in layers
    ]


def _scope(user: User) -> Agency | None:
    """The agency whose keys the page shows: ``?agency=`` or the user's own."""
    code = request.args.get("agency") or None
    with pool(current_app).connection() as conn:
        if code:
            return registry.get_agency(conn, code)
        if user.agency_id is not None and user.role != "platform_admin":
            return registry.users.get_agency_by_id(conn, user.agency_id)
    return None


def _index(
    user: User, form: NewKeyForm | None, status: int = 200, **extra: object
) -> tuple[str, int]:
    agency = _scope(user)
    with pool(current_app).connection() as conn:
        keys = apikeys.list_keys(conn, user, agency.id if agency else None)
        layers = registry.list_layers(conn, agency_id=agency.id) if agency else []
        grants = {key.id: apikeys.key_layers(conn, key.id) for key in keys}
        agencies = {a.id: a for a in registry.list_agencies(conn)}
    if form is not None:
        form.layers.choices = _layer_choices(layers)
    return render_template(
        "keys.html",
        agency=agency,
        agencies=agencies,
        keys=keys,
        grants=grants,
        status_of=apikeys.key_status,
        form=form if agency else None,
        **extra,
    ), status


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    """An agency's keys with their status, and a form to create one."""
    return _index(me(), NewKeyForm())


@bp.route("/", methods=["POST"])
@login_required
def create() -> tuple[str, int]:
    """Create a key; the answer shows it once."""
    user = me()
    agency = _scope(user)
    if agency is None:
        raise NotFoundError("Choose the agency the key belongs to.")
    with pool(current_app).connection() as conn:
        apikeys.list_keys(conn, user, agency.id)  # 403 before 400
        layers = registry.list_layers(conn, agency_id=agency.id)
    form = NewKeyForm()
    form.layers.choices = _layer_choices(layers)
    if not form.validate_on_submit():
        return _index(user, form, 400)
    try:
        with pool(current_app).connection() as conn:
            record, key = apikeys.create_key(
                conn,
                user,
                agency.id,
                form.name.data,
                form.layers.data or [],
                expires_at=end_of_day(form.expires.data),
            )
    except BadInputError as exc:
        flash(exc.message, "error")
        return _index(user, form, exc.status)
    return _index(user, NewKeyForm(formdata=None), new_key=key, new_record=record)


def _detail(
    key_id: int, form: GrantsForm | None = None, status: int = 200
) -> tuple[str, int]:
    user = me()
    with pool(current_app).connection() as conn:
        key = apikeys.get_key(conn, user, key_id)
        granted = apikeys.key_layers(conn, key.id)
        layers = registry.list_layers(conn, agency_id=key.agency_id)
        agency = registry.users.get_agency_by_id(conn, key.agency_id)
    if form is None:
        form = GrantsForm(formdata=None, layers=[layer.slug for layer in granted])
    form.layers.choices = _layer_choices(layers)
    return render_template(
        "key.html",
        key=key,
        agency=agency,
        granted=granted,
        form=form,
        status=apikeys.key_status(key),
    ), status


@bp.route("/<int:key_id>")
@login_required
def detail(key_id: int) -> tuple[str, int]:
    """One key: its layers, status, and revocation."""
    return _detail(key_id)


@bp.route("/<int:key_id>/layers", methods=["POST"])
@login_required
def grants(key_id: int) -> Response | tuple[str, int]:
    """Replace the layers a key opens."""
    user = me()
    with pool(current_app).connection() as conn:
        key = apikeys.get_key(conn, user, key_id)
        layers = registry.list_layers(conn, agency_id=key.agency_id)
    form = GrantsForm()
    form.layers.choices = _layer_choices(layers)
    if not form.validate_on_submit():
        return _detail(key_id, form, 400)
    try:
        with pool(current_app).connection() as conn:
            apikeys.set_key_layers(conn, user, key_id, form.layers.data or [])
    except BadInputError as exc:
        flash(exc.message, "error")
        return _detail(key_id, form, exc.status)
    flash("The key's layers are saved.", "success")
    return redirect(url_for("keys.detail", key_id=key_id))


@bp.route("/<int:key_id>/revoke", methods=["POST"])
@login_required
def revoke(key_id: int) -> Response:
    """Revoke a key for good."""
    with pool(current_app).connection() as conn:
        key = apikeys.revoke_key(conn, me(), key_id)
    flash(f"Key {key.name!r} ({key.prefix}) is revoked.", "success")
    return redirect(url_for("keys.detail", key_id=key_id))
