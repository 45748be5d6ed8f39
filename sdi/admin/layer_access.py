"""Layers, versions and jobs as the signed-in user (or token holder) may see them.

The pages (``sdi.admin.layers``, ``uploads``, ``jobs``) and the JSON API
(``sdi.admin.api.layers``) load everything through these functions, which ask
the one permission matrix (``sdi.registry.permissions``): another agency's
layer, version or job is "not found", whatever the URL or id.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from psycopg import Connection

from sdi import registry
from sdi.errors import BadInputError, GoneError, NotFoundError
from sdi.jobs import Job, get_job
from sdi.registry import permissions, users
from sdi.registry.models import Agency, Layer, User, Version
from sdi.registry.permissions import Action
from sdi.settings import Settings

__all__ = [
    "load_job",
    "load_layer",
    "load_version",
    "owning_agency",
    "settings",
    "visible_layers",
]


def settings() -> Settings:
    """The app's settings."""
    value: Settings = current_app.extensions["sdi_settings"]
    return value


def visible_layers(conn: Connection[Any], user: User) -> list[Layer]:
    """The layers ``user`` may manage: their agency's (platform admins: all)."""
    if user.role == "platform_admin" and user.active:
        return registry.list_layers(conn)
    if user.agency_id is None or not permissions.can(
        user, Action.VIEW_LAYER, agency_id=user.agency_id
    ):
        return []
    return registry.list_layers(conn, agency_id=user.agency_id)


def load_layer(
    conn: Connection[Any], user: User, slug: str, action: Action = Action.VIEW_LAYER
) -> Layer:
    """The layer ``slug`` if ``user`` may do ``action`` on it.

    Another agency's layer raises the same NotFoundError as a missing one;
    one's own agency's without the right raises ForbiddenError.
    """
    layer = registry.get_layer(conn, slug)
    permissions.require_layer(user, action, layer)
    return layer


def load_version(
    conn: Connection[Any],
    user: User,
    slug: str,
    number: int,
    action: Action = Action.VIEW_LAYER,
    *,
    withdrawn_ok: bool = False,
) -> tuple[Layer, Version]:
    """A layer and one of its versions, permission-checked like :func:`load_layer`.

    A withdrawn version's data is gone: GoneError (410, with the reason)
    unless ``withdrawn_ok`` (its record alone is wanted).
    """
    layer = load_layer(conn, user, slug, action)
    version = registry.get_version(conn, layer.id, number)
    if version.withdrawn and not withdrawn_ok:
        day = version.withdrawn_at.date().isoformat() if version.withdrawn_at else ""
        raise GoneError(
            f"Version {number} of {slug!r} was withdrawn on {day}: "
            f"{(version.withdrawn_reason or '').rstrip('.')}. Its data was deleted."
        )
    return layer, version


def load_job(conn: Connection[Any], user: User, job_id: int) -> Job:
    """A job about a layer ``user`` may see (or one they queued themselves).

    Anything else is "no job N", without naming its layer.
    """
    hidden = NotFoundError(f"No job {job_id}.")
    try:
        job = get_job(conn, job_id)
    except NotFoundError:
        raise hidden from None
    slug = job.payload.get("layer")
    if job.layer_id is None or not isinstance(slug, str):
        if job.created_by == user.id or (user.role == "platform_admin" and user.active):
            return job
        raise hidden
    try:
        layer = load_layer(conn, user, slug)
    except NotFoundError:
        raise hidden from None
    if layer.id != job.layer_id:
        raise hidden
    return job


def owning_agency(conn: Connection[Any], user: User, agency_code: str | None) -> Agency:
    """The agency a new layer of ``user`` belongs to, checked for EDIT_LAYER.

    Agency users register for their own agency (``agency_code``, if given,
    must be theirs); platform admins must name one.
    """
    if user.role == "platform_admin":
        if not agency_code:
            raise BadInputError("Choose the agency that owns the layer.")
        agency = registry.get_agency(conn, agency_code)
    else:
        if user.agency_id is None:
            raise BadInputError("Your account belongs to no agency.")
        agency = users.get_agency_by_id(conn, user.agency_id)
        if agency_code and agency_code != agency.code:
            raise NotFoundError(f"No agency {agency_code!r}.")
    permissions.require(user, Action.EDIT_LAYER, agency_id=agency.id)
    return agency
