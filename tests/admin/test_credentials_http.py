"""Issue 9, credentials and sessions, reproduced over real HTTP (``requests``).

Each test is one finding: a replayed session cookie, sessions and tokens that
outlive the credentials that made them, tokens only their owner could revoke
and that could outlive their parent, a lockout anyone could trigger (and an
address a proxy hid), and weak passwords.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from sdi.admin import create_app
from sdi.registry import throttle, tokens
from sdi.registry.models import User
from sdi.settings import Settings
from tests.admin.conftest import PASSWORD, Conn, People, bearer
from tests.conftest import free_port

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NEW_PASSWORD = "mossy kettle orbit"


def _csrf(browser: requests.Session, url: str) -> str:
    page = browser.get(url, timeout=30)
    match = _CSRF.search(page.text)
    assert match, f"no csrf_token on {url} ({page.status_code})"
    return match[1]


def _sign_in(
    base: str,
    email: str,
    password: str = PASSWORD,
    *,
    browser: requests.Session | None = None,
    forwarded_for: str | None = None,
) -> tuple[requests.Session, requests.Response]:
    browser = browser or requests.Session()
    if forwarded_for:
        browser.headers["X-Forwarded-For"] = forwarded_for
    token = _csrf(browser, f"{base}/login")
    response = browser.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    return browser, response


def _browser(base: str, email: str, password: str = PASSWORD) -> requests.Session:
    browser, response = _sign_in(base, email, password)
    assert response.status_code == 302, response.text
    return browser


def _post(browser: requests.Session, base: str, path: str, **data: str) -> Any:
    token = _csrf(browser, f"{base}/account")
    return browser.post(
        f"{base}{path}",
        data={**data, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )


def _signed_in(base: str, cookie: str | None) -> bool:
    """Whether a bare request carrying ``cookie`` reaches a signed-in page."""
    assert cookie
    response = requests.get(
        f"{base}/account",
        cookies={"session": cookie},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
        return False
    assert response.status_code == 200
    return True


def _api(
    base: str, token: str, method: str = "GET", path: str = "/api/me", **kw: Any
) -> requests.Response:
    return requests.request(
        method, f"{base}{path}", headers=bearer(token), timeout=30, **kw
    )


# ------------------------------------------------------------ sessions


def test_a_replayed_cookie_is_refused_after_sign_out(
    served: str, people: People, conn: Conn
) -> None:
    browser = _browser(served, people.admin.email)
    cookie = browser.cookies.get("session")
    assert _signed_in(served, cookie)
    assert _post(browser, served, "/logout").status_code == 302
    assert not _signed_in(served, cookie)  # replayed: the session is gone
    assert conn.execute("SELECT count(*) FROM sdi.sessions").fetchone() == (0,)


def test_password_change_ends_every_other_session(served: str, people: People) -> None:
    here = _browser(served, people.editor.email)
    there = _browser(served, people.editor.email)
    elsewhere = there.cookies.get("session")
    response = _post(
        here, served, "/account/password", current=PASSWORD, new=NEW_PASSWORD
    )
    assert response.status_code == 302
    assert not _signed_in(served, elsewhere)
    # The browser that made the change carries on in a new session.
    assert _signed_in(served, here.cookies.get("session"))


def test_reset_role_change_and_deactivation_end_sessions(
    served: str, people: People, token_for: Callable[[User], str]
) -> None:
    admin_token = token_for(people.admin)
    user_path = f"/api/users/{people.editor.id}"
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{user_path}/password", {"password": NEW_PASSWORD}),
        ("PATCH", user_path, {"role": "agency_admin"}),
        ("PATCH", user_path, {"active": False}),
    ]
    password = PASSWORD
    for method, path, body in changes:
        cookie = _browser(served, people.editor.email, password).cookies.get("session")
        assert _signed_in(served, cookie)
        response = _api(served, admin_token, method, path, json=body)
        assert response.status_code == 200, response.text
        assert not _signed_in(served, cookie), path
        password = body.get("password", password)


def test_sign_out_ends_every_session_of_the_user(
    served: str, people: People, conn: Conn
) -> None:
    here = _browser(served, people.editor.email)
    there = _browser(served, people.editor.email)
    someone_else = _browser(served, people.admin.email)
    page = here.get(f"{served}/account", timeout=30).text
    assert "(this one)" in page
    response = _post(here, served, "/logout")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not _signed_in(served, here.cookies.get("session"))
    assert not _signed_in(served, there.cookies.get("session"))
    assert _signed_in(served, someone_else.cookies.get("session"))
    assert conn.execute("SELECT count(*) FROM sdi.sessions").fetchone() == (1,)


# ------------------------------------------------------------ tokens


def test_tokens_die_with_the_password(
    served: str, people: People, token_for: Callable[[User], str]
) -> None:
    # The user changes their own password: their tokens stop working.
    editor_token = token_for(people.editor)
    assert _api(served, editor_token).status_code == 200
    browser = _browser(served, people.editor.email)
    response = _post(
        browser, served, "/account/password", current=PASSWORD, new=NEW_PASSWORD
    )
    assert response.status_code == 302
    assert _api(served, editor_token).status_code == 401

    # An administrator resets it, or deactivates the account: the same.
    admin_token = token_for(people.admin)
    for body in ({"password": "quiet lantern meadow"}, {"active": False}):
        editor_token = token_for(people.editor)
        assert _api(served, editor_token).status_code == 200
        path = f"/api/users/{people.editor.id}"
        if "password" in body:
            response = _api(served, admin_token, "POST", f"{path}/password", json=body)
        else:
            response = _api(served, admin_token, "PATCH", path, json=body)
        assert response.status_code == 200, response.text
        assert _api(served, editor_token).status_code == 401
    # Reactivation does not bring a revoked token back.
    response = _api(
        served,
        admin_token,
        "PATCH",
        f"/api/users/{people.editor.id}",
        json={"active": True},
    )
    assert response.status_code == 200
    assert _api(served, editor_token).status_code == 401


def test_admins_revoke_their_users_tokens(
    served: str, people: People, token_for: Callable[[User], str], conn: Conn
) -> None:
    editor_token = token_for(people.editor)
    admin_token = token_for(people.admin)
    other_token = token_for(people.other_admin)
    platform_token = token_for(people.platform)

    listed = _api(served, admin_token, path=f"/api/users/{people.editor.id}/tokens")
    assert listed.status_code == 200
    (record,) = listed.json()
    assert record["status"] == "active" and "token" not in record
    revoke = f"/api/tokens/{record['id']}/revoke"
    # Another agency's admin sees neither the user's tokens nor the token.
    response = _api(served, other_token, path=f"/api/users/{people.editor.id}/tokens")
    assert response.status_code == 404
    assert _api(served, other_token, "POST", revoke).status_code == 404
    # An agency admin cannot touch a platform admin's token; a platform admin
    # can revoke anyone's.
    response = _api(served, admin_token, path=f"/api/users/{people.platform.id}/tokens")
    assert response.status_code == 404
    response = _api(served, platform_token, "POST", revoke)
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert _api(served, editor_token).status_code == 401

    # The page: the agency admin revokes a fresh token from the user's page.
    fresh = token_for(people.editor)
    browser = _browser(served, people.admin.email)
    page = browser.get(f"{served}/users/{people.editor.id}", timeout=30).text
    ids = re.findall(rf"/users/{people.editor.id}/tokens/(\d+)/revoke", page)
    assert len(ids) == 1
    response = _post(
        browser, served, f"/users/{people.editor.id}/tokens/{ids[0]}/revoke"
    )
    assert response.status_code == 302
    assert _api(served, fresh).status_code == 401
    # An editor cannot revoke their admin's token.
    record, theirs = tokens.create_token(conn, people.admin, "theirs")
    theirs_id = record.id
    editor = _browser(served, people.editor.email)
    response = _post(
        editor, served, f"/users/{people.admin.id}/tokens/{theirs_id}/revoke"
    )
    assert response.status_code == 404
    assert _api(served, theirs).status_code == 200


def test_no_token_outlives_its_parent(served: str, people: People, conn: Conn) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=4)
    _, parent = tokens.create_token(conn, people.editor, "short", expires_at=soon)
    # Minted with the 4-second token, asking for no expiry or a late one.
    for body in (
        {"name": "forever"},
        {"name": "late", "expires_at": "2099-01-01T00:00:00Z"},
    ):
        response = _api(served, parent, "POST", "/api/tokens", json=body)
        assert response.status_code == 201, response.text
        expires = datetime.fromisoformat(response.json()["expires_at"])
        assert abs(expires - soon) < timedelta(milliseconds=1)
    child = response.json()["token"]
    assert _api(served, child).status_code == 200
    # Four seconds pass (every stored expiry moves back, as the clock would):
    # the parent and all its children are expired together.
    conn.execute(
        "UPDATE sdi.api_tokens SET expires_at = expires_at - interval '5 seconds'"
    )
    assert _api(served, parent).status_code == 401
    assert _api(served, child).status_code == 401

    # Revoking a token revokes what was minted with it, at any depth.
    _, root = tokens.create_token(conn, people.editor, "root")
    child = _api(served, root, "POST", "/api/tokens", json={"name": "c"}).json()
    grandchild = _api(
        served, child["token"], "POST", "/api/tokens", json={"name": "g"}
    ).json()
    assert grandchild["parent_id"] == child["id"]
    assert _api(served, grandchild["token"]).status_code == 200
    browser = _browser(served, people.editor.email)
    (root_id,) = [
        t.id for t in tokens.list_tokens(conn, people.editor) if t.name == "root"
    ]
    assert (
        _post(browser, served, f"/account/tokens/{root_id}/revoke").status_code == 302
    )
    assert _api(served, child["token"]).status_code == 401
    assert _api(served, grandchild["token"]).status_code == 401


# ------------------------------------------------------------ sign-in back-off


@pytest.fixture
def proxied(settings: Settings) -> Iterator[str]:
    """The admin app behind a trusted proxy at 127.0.0.1 (SDI_TRUSTED_PROXIES)."""
    app: Flask = create_app(settings.with_(trusted_proxies=("127.0.0.1/32",)))
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        pool = app.extensions.get("sdi_pool")
        if pool is not None:
            pool.close()


def test_failures_cannot_lock_out_the_account_owner(
    proxied: str, people: People
) -> None:
    attacker, owner = "203.0.113.9", "198.51.100.7"
    email = people.platform.email
    statuses = [
        _sign_in(proxied, email, "guess", forwarded_for=attacker)[1].status_code
        for _ in range(throttle.BY_PAIR.free)
    ]
    assert statuses == [200] * (throttle.BY_PAIR.free - 1) + [429]
    # The guesser waits, even with the right password ...
    _, response = _sign_in(proxied, email, forwarded_for=attacker)
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 30
    assert "try again in" in response.text
    # ... while the platform admin signs in from their own address.
    browser, response = _sign_in(proxied, email, forwarded_for=owner)
    assert response.status_code == 302
    page = browser.get(f"{proxied}/account", timeout=30).text
    assert owner in page  # the session records the client, not the proxy


def test_back_off_per_address_sees_clients_behind_a_trusted_proxy(
    proxied: str, people: People
) -> None:
    sprayer = "203.0.113.50"
    for i in range(throttle.BY_ADDRESS.free - 1):
        _, response = _sign_in(
            proxied, f"nobody{i}@x.test", "guess", forwarded_for=sprayer
        )
        assert response.status_code == 200
    _, response = _sign_in(proxied, "last@x.test", "guess", forwarded_for=sprayer)
    assert response.status_code == 429
    _, response = _sign_in(proxied, people.editor.email, forwarded_for=sprayer)
    assert response.status_code == 429
    # Everyone else behind the same proxy is unaffected.
    _, response = _sign_in(proxied, people.editor.email, forwarded_for="198.51.100.23")
    assert response.status_code == 302


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    served: str, people: People
) -> None:
    email = people.editor.email
    statuses = [
        _sign_in(served, email, "guess", forwarded_for=f"192.0.2.{i}")[1].status_code
        for i in range(throttle.BY_PAIR.free)
    ]
    # A new forged address each time, yet one pair (127.0.0.1) is counted.
    assert statuses[-1] == 429


# ------------------------------------------------------------ weak passwords

WEAK = {
    "aaaaaaaaaa": "Repeats",
    "1234567890": "common password",
    "password12": "common password",
}


def test_weak_passwords_are_refused_with_a_reason(
    served: str, people: People, token_for: Callable[[User], str]
) -> None:
    admin_token = token_for(people.admin)
    admin = _browser(served, people.admin.email)
    editor = _browser(served, people.editor.email)
    email = "patricia.leung@landsd.test"
    for password, why in {**WEAK, email: "e-mail", "patricia.leung": "e-mail"}.items():
        body = {"email": email, "password": password, "role": "agency_editor"}
        response = _api(served, admin_token, "POST", "/api/users", json=body)
        assert response.status_code == 400, password
        assert why in response.json()["error"]["message"], password
        response = _post(
            admin,
            served,
            "/users/",
            email=email,
            password=password,
            role="agency_editor",
            agency="landsd",
            name="",
        )
        assert response.status_code == 400 and why in response.text, password
    reset = f"/users/{people.editor.id}/password"
    for password, why in {**WEAK, people.editor.email: "e-mail"}.items():
        response = _api(
            served, admin_token, "POST", f"/api{reset}", json={"password": password}
        )
        assert response.status_code == 400, password
        assert why in response.json()["error"]["message"], password
        response = _post(admin, served, reset, password=password)
        assert response.status_code == 400 and why in response.text, password
        response = _post(
            editor, served, "/account/password", current=PASSWORD, new=password
        )
        assert response.status_code == 400 and why in response.text, password
    # Nothing was changed: the old password still works, the new user is absent.
    assert _sign_in(served, people.editor.email)[1].status_code == 302
    assert _sign_in(served, email, "anything at all")[1].status_code == 200


def test_cli_refuses_a_weak_password(db_url: str, tmp_path: Path) -> None:
    sdi = Path(sys.executable).with_name("sdi")
    env = {**os.environ, "SDI_DATABASE_URL": db_url, "SDI_VAR_DIR": str(tmp_path)}
    command = [str(sdi), "user", "create", "root@sdi.test", "--role", "platform_admin"]
    done = subprocess.run(
        [*command, "--password", "password12"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "common password" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*command, "--password", NEW_PASSWORD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
