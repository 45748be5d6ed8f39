"""Agencies (departments) and their users."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, errors
from psycopg.rows import class_row

from sdi.errors import BadInputError, ConflictError, NotFoundError
from sdi.registry import audit, permissions
from sdi.registry.models import ROLES, Agency, User
from sdi.registry.password_policy import check_new_password
from sdi.registry.passwords import hash_password
from sdi.registry.publication import bump_generation

__all__ = [
    "create_agency",
    "create_user",
    "get_agency",
    "get_user_by_email",
    "list_agencies",
    "update_agency",
]

_INSERT_AGENCY = """
INSERT INTO sdi.agencies (code, name_en, name_zh, contact_email)
VALUES (%s, %s, %s, %s) RETURNING *
"""
_AGENCY_BY_CODE = "SELECT * FROM sdi.agencies WHERE code = %s"
_AGENCIES = "SELECT * FROM sdi.agencies ORDER BY code"
_INSERT_USER = """
INSERT INTO sdi.users (agency_id, email, name, password_hash, role)
VALUES (%s, %s, %s, %s, %s) RETURNING *
"""
_USER_BY_EMAIL = "SELECT * FROM sdi.users WHERE email = %s"
_UPDATE_AGENCY = """
UPDATE sdi.agencies SET name_en = %s, name_zh = %s, contact_email = %s
WHERE code = %s RETURNING *
"""


def create_agency(
    conn: Connection[Any],
    code: str,
    name_en: str,
    name_zh: str = "",
    contact_email: str = "",
    *,
    actor: str = "cli",
    user_id: int | None = None,
    by: User | None = None,
) -> Agency:
    """Register a department; ``code`` is short lower-case (``landsd``, ``td``).

    ``by``: the signed-in user doing it (checked: platform admins only).
    """
    if by is not None:
        permissions.require(by, permissions.Action.MANAGE_AGENCIES)
        actor, user_id = by.email, by.id
    if not name_en.strip():
        raise BadInputError("An agency needs an English name.")
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Agency)) as cur:
            cur.execute(_INSERT_AGENCY, (code, name_en, name_zh, contact_email))
            agency = cur.fetchone()
            assert agency is not None
            audit.record(
                conn,
                "create",
                "agency",
                code,
                actor=actor,
                user_id=user_id,
                details={"name_en": name_en},
            )
    except errors.UniqueViolation as exc:
        raise ConflictError(f"Agency {code!r} already exists.") from exc
    except errors.CheckViolation as exc:
        raise BadInputError(
            f"Agency code {code!r} must be 2-16 lower-case letters or digits, "
            "starting with a letter."
        ) from exc
    return agency


def get_agency(conn: Connection[Any], code: str) -> Agency:
    """The agency with ``code``; NotFoundError if none."""
    with conn.cursor(row_factory=class_row(Agency)) as cur:
        agency = cur.execute(_AGENCY_BY_CODE, (code,)).fetchone()
    if agency is None:
        raise NotFoundError(f"No agency {code!r}.")
    return agency


def list_agencies(conn: Connection[Any]) -> list[Agency]:
    """All agencies, by code."""
    with conn.cursor(row_factory=class_row(Agency)) as cur:
        return cur.execute(_AGENCIES).fetchall()


def create_user(
    conn: Connection[Any],
    email: str,
    password: str,
    role: str,
    *,
    agency: Agency | None = None,
    name: str = "",
    actor: str = "cli",
    user_id: int | None = None,
) -> User:
    """Create a user with a hashed password (refused when weak, saying why)."""
    if role not in ROLES:
        raise BadInputError(f"Role must be one of {', '.join(ROLES)}, not {role!r}.")
    if role != "platform_admin" and agency is None:
        raise BadInputError(f"A user with role {role} belongs to an agency.")
    email = email.strip().lower()
    check_new_password(password, email=email)
    pw_hash = hash_password(password)
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
            cur.execute(
                _INSERT_USER,
                (agency.id if agency else None, email, name, pw_hash, role),
            )
            user = cur.fetchone()
            assert user is not None
            audit.record(
                conn,
                "create",
                "user",
                email,
                actor=actor,
                user_id=user_id,
                details={"role": role, "agency": agency.code if agency else None},
            )
    except errors.UniqueViolation as exc:
        raise ConflictError(f"A user {email!r} already exists.") from exc
    return user


def get_user_by_email(conn: Connection[Any], email: str) -> User | None:
    """The user with ``email`` (case-insensitive), or None."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(_USER_BY_EMAIL, (email.strip().lower(),)).fetchone()


def update_agency(
    conn: Connection[Any],
    by: User,
    code: str,
    *,
    name_en: str,
    name_zh: str = "",
    contact_email: str = "",
) -> Agency:
    """Change an agency's names and contact (platform admins only); audited."""
    permissions.require(by, permissions.Action.MANAGE_AGENCIES)
    if not name_en.strip():
        raise BadInputError("An agency needs an English name.")
    with conn.transaction():
        before = get_agency(conn, code)
        with conn.cursor(row_factory=class_row(Agency)) as cur:
            agency = cur.execute(
                _UPDATE_AGENCY,
                (name_en.strip(), name_zh.strip(), contact_email.strip(), code),
            ).fetchone()
        assert agency is not None
        changes = {
            field: {"from": getattr(before, field), "to": getattr(agency, field)}
            for field in ("name_en", "name_zh", "contact_email")
            if getattr(before, field) != getattr(agency, field)
        }
        if changes:
            audit.record(
                conn,
                "update",
                "agency",
                code,
                actor=by.email,
                user_id=by.id,
                details=changes,
            )
            # Collections show the agency's names and links: republish.
            bump_generation(conn)
    return agency
