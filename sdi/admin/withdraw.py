"""Taking a version down (platform admins): a confirmation page, then the action.

GET shows what will happen (the rows and file purged, whether the layer falls
back to an earlier version, how many of the version's features a later
version holds too and so keeps) and asks for the reason; POST does it through
:func:`sdi.publish.actions.withdraw_version`, the same path as the JSON API
and ``sdi layers withdraw``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from sdi import registry
from sdi.admin.db import pool
from sdi.admin.layer_access import load_version, settings
from sdi.publish.actions import withdraw_version
from sdi.registry.models import User
from sdi.registry.permissions import Action
from sdi.registry.withdrawal import MAX_REASON, carried_forward

__all__ = ["bp"]

bp = Blueprint("withdraw", __name__)


class WithdrawForm(FlaskForm):  # type: ignore[misc]
    """The reason, kept in the audit log and shown in every 410 for the version."""

    reason = TextAreaField(
        "Why is this version withdrawn? (shown to API users)",
        validators=[DataRequired(), Length(max=MAX_REASON)],
    )


def _me() -> User:
    user: User = current_user.user
    return user


@bp.route("/layers/<slug>/versions/<int:number>/withdraw", methods=["GET", "POST"])
@login_required
def confirm(slug: str, number: int) -> str | Response | tuple[str, int]:
    """Confirm, with a reason, that version ``number`` is to be taken down."""
    user = _me()
    form = WithdrawForm()
    with pool(current_app).connection() as conn:
        layer, version = load_version(conn, user, slug, number, Action.WITHDRAW_VERSION)
        if form.validate_on_submit():
            done = withdraw_version(
                conn, settings(), slug, number, form.reason.data or "", by=user
            )
            message = f"Version {number} of {slug} is withdrawn: its data is deleted."
            if done.published_after != done.published_before:
                message += (
                    f" The layer now serves version {done.published_after}."
                    if done.published_after
                    else " The layer is no longer published."
                )
            if done.carried_into is not None:
                message += (
                    f" {done.carried:,} of the features it added or changed are "
                    f"still in version {done.carried_into}; withdraw that one too "
                    "if it holds the same bad data."
                )
            flash(message, "success")
            return redirect(url_for("layers.detail", slug=slug))
        following, carried = carried_forward(conn, layer, number)
        versions = registry.list_versions(conn, layer.id)
    fallback = max(
        (v.number for v in versions if v.number < number and not v.withdrawn),
        default=None,
    )
    page = render_template(
        "withdraw.html",
        layer=layer,
        version=version,
        form=form,
        following=following,
        carried=carried,
        fallback=fallback,
    )
    return (page, 400) if form.errors else page
