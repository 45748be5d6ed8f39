"""Who may do what: roles x actions x owning agency, in one place.

Every UI page, JSON endpoint and CLI path asks :func:`can` / :func:`require`;
nothing else decides permissions.
"""

from __future__ import annotations

from enum import StrEnum

from sdi.errors import ForbiddenError, NotFoundError
from sdi.registry.models import Layer, User

__all__ = ["Action", "can", "can_manage_user", "require", "require_layer"]


class Action(StrEnum):
    """Things a signed-in user can try to do."""

    VIEW_LAYER = "view_layer"  # see an agency's layers, versions, jobs, previews
    EDIT_LAYER = "edit_layer"  # register layers, change metadata, upload versions
    SET_VISIBILITY = "set_visibility"  # make a layer public or restricted
    PUBLISH_LAYER = "publish_layer"  # publish, roll back, unpublish
    MANAGE_USERS = "manage_users"  # an agency's users
    MANAGE_KEYS = "manage_keys"  # an agency's API keys and their grants
    MANAGE_AGENCIES = "manage_agencies"  # create / change agencies
    MANAGE_LICENCES = "manage_licences"  # the licence list
    VIEW_AUDIT = "view_audit"  # an agency's audit log
    WITHDRAW_VERSION = "withdraw_version"  # take a version down, purging its data


_AGENCY_ADMIN = frozenset(
    {
        Action.VIEW_LAYER,
        Action.EDIT_LAYER,
        Action.SET_VISIBILITY,
        Action.PUBLISH_LAYER,
        Action.MANAGE_USERS,
        Action.MANAGE_KEYS,
        Action.VIEW_AUDIT,
    }
)
_AGENCY_EDITOR = frozenset({Action.VIEW_LAYER, Action.EDIT_LAYER, Action.PUBLISH_LAYER})
_PLATFORM_ONLY = frozenset(
    {Action.MANAGE_AGENCIES, Action.MANAGE_LICENCES, Action.WITHDRAW_VERSION}
)


def can(user: User | None, action: Action, *, agency_id: int | None = None) -> bool:
    """Whether ``user`` may do ``action`` on things owned by ``agency_id``.

    ``agency_id`` None means "not about one agency" (e.g. the licence list).
    Inactive users may do nothing.
    """
    if user is None or not user.active:
        return False
    if user.role == "platform_admin":
        return True
    if action in _PLATFORM_ONLY or agency_id is None:
        return False
    if user.agency_id != agency_id:
        return False
    allowed = _AGENCY_ADMIN if user.role == "agency_admin" else _AGENCY_EDITOR
    return action in allowed


def require(user: User | None, action: Action, *, agency_id: int | None = None) -> None:
    """Raise ``ForbiddenError`` unless :func:`can`."""
    if not can(user, action, agency_id=agency_id):
        raise ForbiddenError("You do not have permission to do this.")


def require_layer(user: User | None, action: Action, layer: Layer) -> None:
    """Like :func:`require` for a layer, but another agency's layer is "not found".

    Answering 404 rather than 403 means guessing ids reveals nothing about
    other agencies' unpublished or restricted layers.
    """
    if not can(user, Action.VIEW_LAYER, agency_id=layer.agency_id):
        raise NotFoundError(f"No layer {layer.slug!r}.")
    require(user, action, agency_id=layer.agency_id)


def can_manage_user(by: User | None, target: User) -> bool:
    """Whether ``by`` manages ``target``'s account (and its sessions and tokens).

    Agency admins manage their agency's people but never a platform admin;
    platform admins manage everyone.
    """
    if by is None or not by.active:
        return False
    if target.role == "platform_admin" and by.role != "platform_admin":
        return False
    return can(by, Action.MANAGE_USERS, agency_id=target.agency_id)
