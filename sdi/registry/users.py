"""Users as the admin app manages them: sign-in, and changes made by an admin.

Functions that act for a signed-in person take that person as ``by`` and check
``sdi.registry.permissions`` themselves, so the pages and the JSON API (and any
future caller) get the same rules. Another agency's users are "not found".
"""

from __future__ import annotations

import functools
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from sdi.errors import BadInputError, NotFoundError
from sdi.registry import audit, permissions, sessions, throttle, tokens
from sdi.registry.agencies import create_user, get_agency, get_user_by_email
from sdi.registry.models import ROLES, Agency, User
from sdi.registry.password_policy import check_new_password
from sdi.registry.passwords import check_password, hash_password
from sdi.registry.permissions import Action

__all__ = [
    "ROLES",
    "agency_scope",
    "assignable_roles",
    "authenticate",
    "change_password",
    "get_agency_by_id",
    "get_managed_user",
    "get_user",
    "list_users",
    "register_user",
    "require_owned",
    "reset_password",
    "sign_out",
    "update_user",
]

_BY_ID = "SELECT * FROM sdi.users WHERE id = %s"
_LIST = """
SELECT * FROM sdi.users
WHERE (%(agency_id)s::int IS NULL OR agency_id = %(agency_id)s)
ORDER BY agency_id NULLS FIRST, email
"""
_UPDATE = """
UPDATE sdi.users SET name = %(name)s, role = %(role)s, active = %(active)s
WHERE id = %(id)s RETURNING *
"""
_UPDATE_HASH = "UPDATE sdi.users SET password_hash = %s WHERE id = %s RETURNING *"
_AGENCY_BY_ID = "SELECT * FROM sdi.agencies WHERE id = %s"
_AGENCY_ROLES = ("agency_admin", "agency_editor")


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the e-mail is unknown, so that answering takes as long.
    return hash_password("not a real password, only for timing")


def require_owned(
    by: User, action: Action, agency_id: int | None, not_found: str
) -> None:
    """Allow ``action`` on an object owned by ``agency_id``, else refuse.

    Someone outside the owning agency gets ``NotFoundError(not_found)`` (so ids
    cannot be probed, as :func:`permissions.require_layer`); someone inside it
    without the right gets ``ForbiddenError``. ``agency_id`` None means a
    platform-level object (a platform admin's account).
    """
    if not permissions.can(by, Action.VIEW_LAYER, agency_id=agency_id):
        raise NotFoundError(not_found)
    permissions.require(by, action, agency_id=agency_id)


def agency_scope(conn: Connection[Any], by: User, code: str | None) -> int | None:
    """The agency id a listing is about: ``code``'s, else ``by``'s own agency.

    Platform admins without ``code`` get None (every agency). Only resolves
    the code; the listing function checks the permission.
    """
    if code:
        return get_agency(conn, code).id
    return None if by.role == "platform_admin" else by.agency_id


def get_user(conn: Connection[Any], user_id: int) -> User:
    """The user with ``user_id``; NotFoundError if none."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        user = cur.execute(_BY_ID, (user_id,)).fetchone()
    if user is None:
        raise NotFoundError(f"No user {user_id}.")
    return user


def get_agency_by_id(conn: Connection[Any], agency_id: int) -> Agency:
    """The agency with primary key ``agency_id``; NotFoundError if none."""
    with conn.cursor(row_factory=class_row(Agency)) as cur:
        agency = cur.execute(_AGENCY_BY_ID, (agency_id,)).fetchone()
    if agency is None:
        raise NotFoundError(f"No agency {agency_id}.")
    return agency


def list_users(
    conn: Connection[Any], by: User, *, agency_id: int | None = None
) -> list[User]:
    """Users ``by`` manages: one agency's, or (platform admins, None) everyone."""
    permissions.require(by, Action.MANAGE_USERS, agency_id=agency_id)
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(_LIST, {"agency_id": agency_id}).fetchall()


def get_managed_user(conn: Connection[Any], by: User, user_id: int) -> User:
    """A user ``by`` may manage; another agency's users are "not found"."""
    not_found = f"No user {user_id}."
    try:
        target = get_user(conn, user_id)
    except NotFoundError:
        raise NotFoundError(not_found) from None
    require_owned(by, Action.MANAGE_USERS, target.agency_id, not_found)
    if target.role not in assignable_roles(by):  # a platform admin with an agency
        raise NotFoundError(not_found)
    return target


def assignable_roles(by: User) -> tuple[str, ...]:
    """The roles ``by`` may give: platform admins any, agency admins agency roles."""
    if permissions.can(by, Action.MANAGE_USERS, agency_id=None):
        return ROLES
    return _AGENCY_ROLES


def _check_role(by: User, role: str, agency_id: int | None) -> None:
    if role not in ROLES:
        raise BadInputError(f"Role must be one of {', '.join(ROLES)}, not {role!r}.")
    if role not in assignable_roles(by):
        permissions.require(by, Action.MANAGE_USERS, agency_id=None)
    if role != "platform_admin" and agency_id is None:
        raise BadInputError(f"A user with role {role} belongs to an agency.")


def register_user(
    conn: Connection[Any],
    by: User,
    *,
    email: str,
    password: str,
    role: str,
    agency_code: str | None = None,
    name: str = "",
) -> User:
    """Create a user in ``agency_code`` (None: a platform admin) as ``by``."""
    agency = get_agency(conn, agency_code) if agency_code else None
    agency_id = agency.id if agency else None
    if role == "platform_admin":
        agency, agency_id = None, None
    permissions.require(by, Action.MANAGE_USERS, agency_id=agency_id)
    _check_role(by, role, agency_id)
    if "@" not in email or len(email) > 254:
        raise BadInputError(f"{email!r} is not an e-mail address.")
    return create_user(
        conn,
        email,
        password,
        role,
        agency=agency,
        name=name.strip(),
        actor=by.email,
        user_id=by.id,
    )


def update_user(
    conn: Connection[Any],
    by: User,
    user_id: int,
    *,
    name: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> User:
    """Change a user's name, role or active flag as ``by``; audited."""
    with conn.transaction():
        target = get_managed_user(conn, by, user_id)
        changes: dict[str, Any] = {}
        if name is not None and name.strip() != target.name:
            changes["name"] = name.strip()
        if role is not None and role != target.role:
            _check_role(by, role, target.agency_id)
            changes["role"] = role
        if active is not None and active != target.active:
            changes["active"] = active
        if target.id == by.id and ("role" in changes or changes.get("active") is False):
            raise BadInputError(
                "You cannot change your own role or deactivate yourself; "
                "ask another administrator."
            )
        if not changes:
            return target
        params = {
            "id": target.id,
            "name": changes.get("name", target.name),
            "role": changes.get("role", target.role),
            "active": changes.get("active", target.active),
        }
        with conn.cursor(row_factory=class_row(User)) as cur:
            updated = cur.execute(_UPDATE, params).fetchone()
        assert updated is not None
        if set(changes) == {"active"}:
            action = "activate" if changes["active"] else "deactivate"
        else:
            action = "update"
        # A new role or a deactivation ends every session: whatever a browser
        # was allowed before must be asked again. Tokens act with the user's
        # current role, so only a deactivation revokes them.
        if "role" in changes or changes.get("active") is False:
            sessions.end_all(conn, target.id)
        if changes.get("active") is False:
            tokens.revoke_all(conn, target, reason="deactivate", by=by)
        audit.record(
            conn,
            action,
            "user",
            target.email,
            actor=by.email,
            user_id=by.id,
            details={
                k: {"from": getattr(target, k), "to": v} for k, v in changes.items()
            },
        )
    return updated


def reset_password(
    conn: Connection[Any], by: User, user_id: int, password: str
) -> User:
    """Set a new password for a user ``by`` manages (an administrator's reset).

    Ends every session of the user and revokes their API tokens.
    """
    with conn.transaction():
        target = get_managed_user(conn, by, user_id)
        check_new_password(password, email=target.email)
        pw_hash = hash_password(password)
        with conn.cursor(row_factory=class_row(User)) as cur:
            updated = cur.execute(_UPDATE_HASH, (pw_hash, target.id)).fetchone()
        assert updated is not None
        sessions.end_all(conn, target.id)
        tokens.revoke_all(conn, target, reason="reset_password", by=by)
        audit.record(
            conn,
            "reset_password",
            "user",
            target.email,
            actor=by.email,
            user_id=by.id,
        )
    return updated


def authenticate(conn: Connection[Any], email: str, password: str, ip: str) -> User:
    """The active user with these credentials; throttled and audited.

    Raises ``throttle.TooManyAttemptsError`` while this e-mail from ``ip``, or
    ``ip`` itself, must wait after repeated failures (never the e-mail from
    every address), and ``BadInputError`` for wrong credentials (one message
    for an unknown e-mail, a wrong password and a deactivated account).
    """
    email = email.strip().lower()
    throttle.check(conn, email, ip)
    user = get_user_by_email(conn, email)
    ok = check_password(user.password_hash if user else _dummy_hash(), password)
    if user is not None and user.active and ok:
        with conn.transaction():
            throttle.clear(conn, email, ip)
            audit.record(conn, "login", "user", email, actor=email, user_id=user.id)
        return user
    with conn.transaction():
        wait = throttle.record_failure(conn, email, ip)
        audit.record(
            conn,
            "login_failed",
            "user",
            email,
            actor="anonymous",
            details={"ip": ip, "wait": wait},
        )
    if wait:
        raise throttle.TooManyAttemptsError(wait)
    raise BadInputError("Wrong e-mail or password.")


def change_password(conn: Connection[Any], user: User, current: str, new: str) -> User:
    """``user`` changes their own password, proving they know the current one.

    Ends every session of the user (the caller may start a fresh one for the
    browser that made the change) and revokes their API tokens.
    """
    if not user.active or not check_password(user.password_hash, current):
        raise BadInputError("The current password is wrong.")
    check_new_password(new, email=user.email)
    pw_hash = hash_password(new)
    with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
        updated = cur.execute(_UPDATE_HASH, (pw_hash, user.id)).fetchone()
        assert updated is not None
        sessions.end_all(conn, user.id)
        tokens.revoke_all(conn, user, reason="change_password")
        audit.record(
            conn,
            "change_password",
            "user",
            user.email,
            actor=user.email,
            user_id=user.id,
        )
    return updated


def sign_out(conn: Connection[Any], user: User) -> int:
    """Sign ``user`` out: end every session of theirs (in every browser and
    worker); how many there were; audited."""
    with conn.transaction():
        ended = sessions.end_all(conn, user.id)
        audit.record(
            conn,
            "logout",
            "user",
            user.email,
            actor=user.email,
            user_id=user.id,
            details={"sessions": ended},
        )
    return ended
