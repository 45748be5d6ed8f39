"""The permission matrix: role x action x owning agency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sdi.errors import ForbiddenError, NotFoundError
from sdi.registry.models import Layer, User
from sdi.registry.permissions import Action, can, require, require_layer

OWN, OTHER = 1, 2


def user(role: str, agency_id: int | None = OWN, active: bool = True) -> User:
    return User(1, agency_id, "u@example.com", "", "x", role, active, datetime.now(UTC))


def layer(agency_id: int) -> Layer:
    now = datetime.now(UTC)
    return Layer(
        1,
        "l",
        agency_id,
        "vector",
        "L",
        "",
        "",
        "",
        [],
        "",
        "",
        "",
        1,
        "public",
        None,
        None,
        None,
        now,
        now,
    )


EDITOR = {Action.VIEW_LAYER, Action.EDIT_LAYER, Action.PUBLISH_LAYER}
# Making a layer public or restricted is the agency admin's decision.
ADMIN = EDITOR | {
    Action.SET_VISIBILITY,
    Action.MANAGE_USERS,
    Action.MANAGE_KEYS,
    Action.VIEW_AUDIT,
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(
    ("role", "own_allowed"),
    [
        ("agency_editor", EDITOR),
        ("agency_admin", ADMIN),
        ("platform_admin", set(Action)),
    ],
)
def test_matrix(role: str, own_allowed: set[Action], action: Action) -> None:
    u = user(role, None if role == "platform_admin" else OWN)
    assert can(u, action, agency_id=OWN) == (action in own_allowed)
    other_allowed = role == "platform_admin"
    assert can(u, action, agency_id=OTHER) == other_allowed


@pytest.mark.parametrize("action", list(Action))
def test_inactive_and_anonymous_may_do_nothing(action: Action) -> None:
    assert not can(None, action, agency_id=OWN)
    assert not can(user("platform_admin", active=False), action, agency_id=OWN)


def test_platform_only_actions_need_no_agency() -> None:
    assert can(user("platform_admin", None), Action.MANAGE_LICENCES)
    assert not can(user("agency_admin"), Action.MANAGE_LICENCES)
    assert not can(user("agency_admin"), Action.MANAGE_AGENCIES, agency_id=OWN)


def test_other_agencys_layer_is_not_found_not_forbidden() -> None:
    with pytest.raises(NotFoundError):
        require_layer(user("agency_admin"), Action.VIEW_LAYER, layer(OTHER))
    require_layer(user("agency_editor"), Action.PUBLISH_LAYER, layer(OWN))
    with pytest.raises(ForbiddenError):
        require(user("agency_editor"), Action.MANAGE_KEYS, agency_id=OWN)
