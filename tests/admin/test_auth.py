"""Signing in and out: CSRF, back-off, session expiry, the own-account page.

The findings of issue 9 (replayed cookies, surviving tokens, lockout, weak
passwords) are reproduced over real HTTP in ``test_credentials_http.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient
from psycopg import sql

from sdi.admin.auth import SESSION_ABSOLUTE, SESSION_IDLE
from sdi.registry import audit, throttle, tokens, users
from sdi.registry.models import User
from tests.admin.conftest import PASSWORD, Conn, People, bearer, csrf_token, login


def _actions(conn: Conn, email: str) -> list[str]:
    return [
        e.action for e in audit.list_audit(conn, object_type="user", object_id=email)
    ]


def test_sign_in_and_out(client: FlaskClient, people: People, conn: Conn) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html and 'for="email"' in html
    assert client.get("/users/").status_code == 302

    response = login(client, people.admin.email)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/")
    assert client.get("/users/").status_code == 200
    assert _actions(conn, people.admin.email)[0] == "login"

    # Sign-out is a POST with the CSRF token; GET is not allowed.
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/users/").status_code == 200
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(client, "/account")}
    )
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/users/").status_code == 302
    assert _actions(conn, people.admin.email)[0] == "logout"


def test_login_form_needs_csrf_token(client: FlaskClient, people: People) -> None:
    response = client.post(
        "/login", data={"email": people.admin.email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert client.get("/users/").status_code == 302
    bad = client.post(
        "/login",
        data={"email": people.admin.email, "password": PASSWORD, "csrf_token": "x"},
    )
    assert bad.status_code == 400


def test_wrong_password_and_inactive_user(
    client: FlaskClient, people: People, conn: Conn
) -> None:
    for email, password in (
        (people.admin.email, "wrong password!"),
        ("nobody@landsd.test", PASSWORD),
        (people.inactive.email, PASSWORD),
    ):
        response = login(client, email, password)
        assert response.status_code == 200
        assert "Wrong e-mail or password." in response.get_data(as_text=True)
        assert client.get("/account").status_code == 302
    assert _actions(conn, people.admin.email)[0] == "login_failed"


def test_login_backs_off_after_repeated_failures(
    client: FlaskClient, people: People, conn: Conn
) -> None:
    email = people.editor.email
    for _ in range(throttle.BY_PAIR.free - 1):
        assert login(client, email, "not the password").status_code == 200
    response = login(client, email, "not the password")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert "try again in 30 seconds" in response.get_data(as_text=True)
    # The right password is refused too while waiting, in any letter case.
    response = login(client, email.upper(), PASSWORD)
    assert response.status_code == 429
    assert client.get("/account").status_code == 302
    # Another account from the same address does not wait.
    assert login(client, people.admin.email).status_code == 302
    # The wait runs out.
    conn.execute("UPDATE sdi.login_backoff SET blocked_until = now()")
    other = client.application.test_client()
    assert login(other, email).status_code == 302


def test_next_is_followed_only_inside_the_app(
    client: FlaskClient, people: People
) -> None:
    response = client.get("/audit/?page=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/audit/?page%3D2"
    token = csrf_token(client, "/login")
    data = {"email": people.admin.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login?next=/audit/?page=2", data=data)
    assert response.headers["Location"] == "/audit/?page=2"
    for evil in ("https://evil.test/", "//evil.test/", "/\\evil.test"):
        fresh = client.application.test_client()
        token = csrf_token(fresh, "/login")
        response = fresh.post(
            "/login", query_string={"next": evil}, data={**data, "csrf_token": token}
        )
        assert response.headers["Location"] == "/", evil


def _age(conn: Conn, user: User, column: str, by: timedelta) -> None:
    """Make ``user``'s sessions look ``by`` older in ``column``."""
    conn.execute(
        sql.SQL("UPDATE sdi.sessions SET {} = now() - %s WHERE user_id = %s").format(
            sql.Identifier(column)
        ),
        (by, user.id),
    )


def test_idle_session_expires(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.admin)
    _age(conn, people.admin, "seen_at", SESSION_IDLE - timedelta(minutes=1))
    assert client.get("/users/").status_code == 200  # and it refreshes seen_at
    row = conn.execute(
        "SELECT now() - seen_at FROM sdi.sessions WHERE user_id = %s",
        (people.admin.id,),
    ).fetchone()
    assert row is not None and row[0] < timedelta(seconds=5)
    _age(conn, people.admin, "seen_at", SESSION_IDLE + timedelta(seconds=1))
    response = client.get("/users/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has ended" in page
    assert client.get("/users/").status_code == 302
    # Expiring on the sign-in page itself shows the form (no redirect loop).
    login(client, people.admin.email)
    _age(conn, people.admin, "seen_at", SESSION_IDLE + timedelta(seconds=1))
    assert client.get("/login").status_code == 200
    assert client.get("/users/").status_code == 302
    # Expired sessions are deleted, not kept.
    left = conn.execute("SELECT count(*) FROM sdi.sessions").fetchone()
    assert left == (0,)


def test_session_expires_after_eight_hours_however_active(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.admin)
    _age(conn, people.admin, "created_at", SESSION_ABSOLUTE - timedelta(minutes=1))
    assert client.get("/users/").status_code == 200
    _age(conn, people.admin, "created_at", SESSION_ABSOLUTE + timedelta(seconds=1))
    assert client.get("/users/").status_code == 302
    assert client.get("/account").status_code == 302


def test_forged_session_is_refused(client: FlaskClient, people: People) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = str(people.admin.id)
        session["_fresh"] = True
    assert client.get("/users/").status_code == 302


def test_deactivation_and_password_reset_end_sessions(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    editor = client_for(people.editor)
    assert editor.get("/account").status_code == 200
    users.reset_password(conn, people.admin, people.editor.id, "a whole new password")
    assert editor.get("/account").status_code == 302

    admin = client_for(people.admin)
    assert admin.get("/account").status_code == 200
    users.update_user(conn, people.platform, people.admin.id, active=False)
    assert admin.get("/account").status_code == 302


def test_api_ignores_the_session_cookie(
    client_for: Callable[[User], FlaskClient], people: People
) -> None:
    client = client_for(people.admin)
    response = client.get("/api/me")
    assert response.status_code == 401
    response = client.post("/api/tokens", json={"name": "x"})
    assert response.status_code == 401


def test_account_tokens_and_password(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.editor)
    page = client.get("/account").get_data(as_text=True)
    assert "No tokens yet." in page
    token = csrf_token(client, "/account")
    response = client.post(
        "/account/tokens", data={"name": "nightly", "expires": "", "csrf_token": token}
    )
    assert response.status_code == 200
    shown = re.search(
        r"sdit_[0-9a-f]{8}_[A-Za-z0-9_-]+", response.get_data(as_text=True)
    )
    assert shown
    # Not kept in the session cookie, and shown only once.
    with client.session_transaction() as session:
        assert shown[0] not in str(dict(session))
    assert shown[0] not in client.get("/account").get_data(as_text=True)
    api = client.application.test_client()
    me = api.get("/api/me", headers=bearer(shown[0]))
    assert me.status_code == 200 and me.get_json()["email"] == people.editor.email

    record = tokens.list_tokens(conn, people.editor)[0]
    assert record.name == "nightly" and record.last_used_at is not None
    bad = client.post("/account/tokens", data={"name": "", "csrf_token": token})
    assert bad.status_code == 400
    past = client.post(
        "/account/tokens",
        data={"name": "old", "expires": "2001-01-01", "csrf_token": token},
    )
    assert past.status_code == 400 and "future" in past.get_data(as_text=True)
    # Someone else's token is not found.
    _, admin_token = tokens.create_token(conn, people.admin, "admin's")
    admin_record = tokens.list_tokens(conn, people.admin)[0]
    response = client.post(
        f"/account/tokens/{admin_record.id}/revoke", data={"csrf_token": token}
    )
    assert response.status_code == 404
    assert api.get("/api/me", headers=bearer(admin_token)).status_code == 200
    response = client.post(
        f"/account/tokens/{record.id}/revoke", data={"csrf_token": token}
    )
    assert response.status_code == 302
    assert api.get("/api/me", headers=bearer(shown[0])).status_code == 401

    wrong = client.post(
        "/account/password",
        data={"current": "nope", "new": "mossy kettle orbit", "csrf_token": token},
    )
    assert wrong.status_code == 400
    assert "current password is wrong" in wrong.get_data(as_text=True)
    ok = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "mossy kettle orbit", "csrf_token": token},
    )
    assert ok.status_code == 302
    assert client.get("/account").status_code == 200  # still signed in
    assert (
        login(
            client.application.test_client(), people.editor.email, "mossy kettle orbit"
        ).status_code
        == 302
    )
