"""Users as admins manage them: permissions, roles, passwords, sign-in throttling."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.errors import BadInputError, ForbiddenError, NotFoundError
from sdi.registry import audit, sessions, throttle, users
from sdi.registry.models import Agency, User

Conn = psycopg.Connection[Any]
PW = "long enough password"


@pytest.fixture
def world(conn: Conn) -> dict[str, Any]:
    own = registry.create_agency(conn, "landsd", "Lands Department", "地政總署")
    other = registry.create_agency(conn, "td", "Transport Department")

    def mk(email: str, role: str, agency: Agency | None) -> User:
        return registry.create_user(conn, email, PW, role, agency=agency)

    return {
        "own": own,
        "other": other,
        "platform": mk("p@x.test", "platform_admin", None),
        "admin": mk("a@own.test", "agency_admin", own),
        "editor": mk("e@own.test", "agency_editor", own),
        "other_editor": mk("e@other.test", "agency_editor", other),
    }


def test_agency_admin_manages_own_agency_users_only(
    conn: Conn, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    new = users.register_user(
        conn,
        admin,
        email="New@Own.test",
        password=PW,
        role="agency_editor",
        agency_code="landsd",
    )
    assert new.email == "new@own.test" and new.agency_id == world["own"].id
    with pytest.raises(ForbiddenError):
        users.register_user(
            conn,
            admin,
            email="x@td.test",
            password=PW,
            role="agency_editor",
            agency_code="td",
        )
    with pytest.raises(ForbiddenError):
        users.register_user(
            conn, admin, email="x@own.test", password=PW, role="platform_admin"
        )
    assert {
        u.email for u in users.list_users(conn, admin, agency_id=world["own"].id)
    } >= {"a@own.test", "e@own.test", "new@own.test"}
    with pytest.raises(ForbiddenError):
        users.list_users(conn, admin, agency_id=world["other"].id)
    with pytest.raises(ForbiddenError):
        users.list_users(conn, admin)
    # Another agency's user, or a platform admin, is not found.
    for target in (world["other_editor"], world["platform"]):
        with pytest.raises(NotFoundError):
            users.update_user(conn, admin, target.id, active=False)
        with pytest.raises(NotFoundError):
            users.reset_password(conn, admin, target.id, "another long password")
    assert registry.get_user_by_email(conn, "e@other.test").active  # type: ignore[union-attr]


def test_editor_may_not_manage_users(conn: Conn, world: dict[str, Any]) -> None:
    with pytest.raises(ForbiddenError):
        users.list_users(conn, world["editor"], agency_id=world["own"].id)
    with pytest.raises(ForbiddenError):
        users.update_user(conn, world["editor"], world["admin"].id, name="x")


def test_update_deactivate_and_audit(conn: Conn, world: dict[str, Any]) -> None:
    admin, editor = world["admin"], world["editor"]
    changed = users.update_user(conn, admin, editor.id, name="Ed", role="agency_admin")
    assert (changed.name, changed.role) == ("Ed", "agency_admin")
    off = users.update_user(conn, admin, editor.id, active=False)
    assert not off.active
    entries = audit.list_audit(conn, object_type="user", object_id=editor.email)
    assert [e.action for e in entries[:2]] == ["deactivate", "update"]
    assert entries[1].details["role"] == {"from": "agency_editor", "to": "agency_admin"}
    assert entries[0].user_id == admin.id
    with pytest.raises(BadInputError, match="yourself"):
        users.update_user(conn, admin, admin.id, active=False)
    with pytest.raises(BadInputError, match="Role"):
        users.update_user(conn, admin, editor.id, role="boss")


def test_platform_admin_manages_everyone(conn: Conn, world: dict[str, Any]) -> None:
    p = world["platform"]
    users.update_user(conn, p, world["other_editor"].id, active=False)
    new = users.register_user(
        conn,
        p,
        email="p2@x.test",
        password=PW,
        role="platform_admin",
        agency_code="td",
    )
    assert new.agency_id is None
    assert len(users.list_users(conn, p)) == 5


def test_reset_and_change_password(conn: Conn, world: dict[str, Any]) -> None:
    admin, editor = world["admin"], world["editor"]
    before = sessions.create(conn, editor)
    reset = users.reset_password(conn, admin, editor.id, "brand new password")
    assert sessions.resume(conn, before) is None  # the reset ended it
    assert users.authenticate(conn, editor.email, "brand new password", "1.1.1.1")
    with pytest.raises(BadInputError, match="at least"):
        users.reset_password(conn, admin, editor.id, "short")
    with pytest.raises(BadInputError, match="current password"):
        users.change_password(conn, reset, "wrong", "whatever long one")
    before = sessions.create(conn, editor)
    changed = users.change_password(
        conn, reset, "brand new password", "yet another password"
    )
    assert sessions.resume(conn, before) is None
    assert users.authenticate(conn, editor.email, "yet another password", "1.1.1.1")
    assert changed.id == editor.id


def test_weak_passwords_are_refused_everywhere(
    conn: Conn, world: dict[str, Any]
) -> None:
    admin, editor = world["admin"], world["editor"]
    weak = {
        "aaaaaaaaaa": "Repeats",
        "1234567890": "common password",
        "password12": "common password",
        "e@own.test": "e-mail",
        "E@Own.Test": "e-mail",
    }
    for password, why in weak.items():
        with pytest.raises(BadInputError, match=why):
            users.reset_password(conn, admin, editor.id, password)
        with pytest.raises(BadInputError, match=why):
            users.change_password(conn, editor, PW, password)
    with pytest.raises(BadInputError, match="e-mail"):
        users.register_user(
            conn,
            admin,
            email="pat.lee@own.test",
            password="pat.lee@own",
            role="agency_editor",
            agency_code="landsd",
        )
    assert users.authenticate(conn, editor.email, PW, "1.1.1.1")


def test_back_off_rules() -> None:
    waits = [throttle.BY_PAIR.delay(n).total_seconds() for n in range(1, 12)]
    assert waits == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert throttle.BY_ADDRESS.delay(19).total_seconds() == 0
    assert throttle.BY_ADDRESS.delay(20).total_seconds() == 10
    assert throttle.BY_ADDRESS.delay(10**6).total_seconds() == 900


def test_login_backs_off_per_email_and_address(
    conn: Conn, world: dict[str, Any]
) -> None:
    email = world["editor"].email
    for _ in range(throttle.BY_PAIR.free - 1):
        with pytest.raises(BadInputError, match="Wrong e-mail or password"):
            users.authenticate(conn, email, "wrong", "10.0.0.1")
    with pytest.raises(throttle.TooManyAttemptsError, match="30 seconds") as exc:
        users.authenticate(conn, email, "wrong", "10.0.0.1")
    assert exc.value.retry_after == 30
    # While it waits even the right password is refused from that address ...
    with pytest.raises(throttle.TooManyAttemptsError):
        users.authenticate(conn, email.upper(), PW, "10.0.0.1")
    # ... but the account is not locked: its owner signs in from elsewhere.
    assert users.authenticate(conn, email, PW, "10.0.0.2").email == email
    # Each further failure doubles the wait.
    conn.execute("UPDATE sdi.login_backoff SET blocked_until = now()")
    with pytest.raises(throttle.TooManyAttemptsError) as exc:
        users.authenticate(conn, email, "wrong", "10.0.0.1")
    assert exc.value.retry_after == 60
    # When the wait is over the right password works and forgets the pair.
    conn.execute("UPDATE sdi.login_backoff SET blocked_until = now()")
    assert users.authenticate(conn, email, PW, "10.0.0.1").email == email
    left = conn.execute("SELECT subject FROM sdi.login_backoff").fetchall()
    assert left == [("ip:10.0.0.1",)]
    actions = [e.action for e in audit.list_audit(conn, object_id=email)]
    assert actions.count("login_failed") == throttle.BY_PAIR.free + 1
    assert actions[0] == "login"


def test_login_backs_off_per_address(conn: Conn, world: dict[str, Any]) -> None:
    for i in range(throttle.BY_ADDRESS.free):
        with pytest.raises((BadInputError, throttle.TooManyAttemptsError)):
            users.authenticate(conn, f"nobody{i}@x.test", "wrong", "10.9.9.9")
    with pytest.raises(throttle.TooManyAttemptsError):
        users.authenticate(conn, world["editor"].email, PW, "10.9.9.9")
    assert users.authenticate(conn, world["editor"].email, PW, "10.9.9.8")


def test_inactive_user_cannot_sign_in(conn: Conn, world: dict[str, Any]) -> None:
    users.update_user(conn, world["admin"], world["editor"].id, active=False)
    with pytest.raises(BadInputError, match="Wrong e-mail or password"):
        users.authenticate(conn, world["editor"].email, PW, "10.0.0.1")


def test_agencies_and_licences_are_platform_only(
    conn: Conn, world: dict[str, Any]
) -> None:
    p, admin = world["platform"], world["admin"]
    with pytest.raises(ForbiddenError):
        registry.create_agency(conn, "hyd", "Highways", by=admin)
    with pytest.raises(ForbiddenError):
        registry.update_agency(conn, admin, "landsd", name_en="Mine")
    agency = registry.update_agency(
        conn, p, "landsd", name_en="Lands Dept", name_zh="地政總署", contact_email="a@b"
    )
    assert agency.name_en == "Lands Dept"
    assert audit.list_audit(conn, object_type="agency", object_id="landsd")[
        0
    ].details == {
        "name_en": {"from": "Lands Department", "to": "Lands Dept"},
        "contact_email": {"from": "", "to": "a@b"},
    }
    with pytest.raises(ForbiddenError):
        registry.create_licence(conn, admin, "x-1", name_en="X")
    lic = registry.create_licence(conn, p, "ogl-hk", name_en="Open", url="https://x")
    assert lic.code == "ogl-hk" and not lic.restricted
    lic = registry.update_licence(conn, p, "ogl-hk", restricted=True)
    assert lic.restricted and lic.name_en == "Open"
    seeded = registry.update_licence(conn, p, "hk-csdi", name_zh="條款")
    assert seeded.name_zh == "條款"
    with pytest.raises(BadInputError):
        registry.create_licence(conn, p, "Bad Code", name_en="X")
    with pytest.raises(BadInputError):
        registry.update_licence(conn, p, "hk-csdi", url="ftp://x")


def test_agency_audit_scoping(conn: Conn, world: dict[str, Any]) -> None:
    admin, p = world["admin"], world["platform"]
    users.update_user(conn, admin, world["editor"].id, name="E")
    users.update_user(conn, p, world["other_editor"].id, name="O")
    own = audit.list_agency_audit(conn, admin, world["own"].id)
    assert {e.object_id for e in own} >= {"e@own.test", "landsd"}
    assert "e@other.test" not in {e.object_id for e in own}
    assert "td" not in {e.object_id for e in own}
    with pytest.raises(ForbiddenError):
        audit.list_agency_audit(conn, admin, world["other"].id)
    with pytest.raises(ForbiddenError):
        audit.list_agency_audit(conn, admin, None)
    with pytest.raises(ForbiddenError):
        audit.list_agency_audit(conn, world["editor"], world["own"].id)
    everything = audit.list_agency_audit(conn, p, None)
    assert everything[0].object_id == "e@other.test"
    assert [e.id for e in everything] == sorted(
        (e.id for e in everything), reverse=True
    )
