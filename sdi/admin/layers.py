"""The agency's layers."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required

from sdi import registry
from sdi.admin.db import pool

__all__ = ["bp"]

bp = Blueprint("layers", __name__)


@bp.route("/")
@login_required
def index() -> str:
    """The layers the signed-in user may manage, with their versions."""
    user = current_user.user
    agency_id = None if user.role == "platform_admin" else user.agency_id
    with pool(current_app).connection() as conn:
        layers = registry.list_layers(conn, agency_id=agency_id)
        agencies = {a.id: a for a in registry.list_agencies(conn)}
        licences = {lic.id: lic for lic in registry.list_licences(conn)}
        versions = {
            layer.id: registry.list_versions(conn, layer.id) for layer in layers
        }
    return render_template(
        "layers.html",
        layers=layers,
        agencies=agencies,
        licences=licences,
        versions=versions,
        user=user,
    )
