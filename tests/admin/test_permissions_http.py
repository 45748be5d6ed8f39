"""The permission matrix over HTTP: role x action x owning agency, pages and JSON API.

Every action targets things of agency ``landsd`` ("own"). It is tried by a
platform admin, landsd's admin and editor, td's admin and editor ("other
agency"), an anonymous visitor and a deactivated landsd admin; once through
the pages (session + real CSRF token) and once through the JSON API (bearer
token). A refused attempt must change nothing in the database (audit log
included), and another agency's objects named by id answer 404, not 403.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sdi.registry import apikeys, tokens, users
from sdi.registry.models import ApiKey, Layer, User
from tests.admin.conftest import PASSWORD, Conn, People, bearer, csrf_token

ROLES = (
    "platform",
    "admin",
    "editor",
    "other_admin",
    "other_editor",
    "anonymous",
    "inactive",
)
# Refused roles first, so that a success does not change what others meet.
ORDER = ("anonymous", "inactive", "editor", "other_editor", "other_admin")
_counter = itertools.count()

# Every table an action could change, and its order; tokens without last_used_at
# (using a token to be refused records its use).
_TABLES = {
    "sdi.users": "id",
    "sdi.agencies": "id",
    "sdi.licences": "id",
    "sdi.layers": "id",
    "sdi.api_keys": "id",
    "sdi.api_key_layers": "key_id, layer_id",
    "sdi.audit_log": "id",
}
_TOKENS = "SELECT id, revoked_at FROM sdi.api_tokens ORDER BY id"


@dataclass
class World:
    """People, their clients and tokens, and landsd's (and td's) objects."""

    people: People
    target: User  # a landsd editor that actions change
    layer: Layer  # landsd_roads (restricted)
    key: ApiKey  # a landsd key opening landsd_roads
    other_key: ApiKey  # a td key
    target_token: int  # the id of one of target's API tokens
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, role: str) -> User | None:
        """The registry user playing ``role`` (None: anonymous)."""
        return None if role == "anonymous" else getattr(self.people, role)


@pytest.fixture
def world(
    app: Flask,
    conn: Conn,
    people: People,
    client_for: Callable[[User], FlaskClient],
    token_for: Callable[[User], str],
    make_layer: Callable[..., Layer],
) -> World:
    """Everything the matrix needs, prepared before any snapshot."""
    target = users.register_user(
        conn,
        people.platform,
        email="target@landsd.test",
        password=PASSWORD,
        role="agency_editor",
        agency_code="landsd",
    )
    layer = make_layer(people.agency, "landsd_roads", "restricted")
    make_layer(people.other_agency, "td_buses", "restricted")
    key, _ = apikeys.create_key(
        conn, people.admin, people.agency.id, "landsd vendor key", ["landsd_roads"]
    )
    other_key, _ = apikeys.create_key(
        conn, people.other_admin, people.other_agency.id, "td vendor key", []
    )
    target_token, _ = tokens.create_token(conn, target, "target's script")
    w = World(people, target, layer, key, other_key, target_token.id)
    for role in ROLES:
        user = w.user(role)
        w.clients[role] = app.test_client() if user is None else client_for(user)
        if user is not None:
            w.tokens[role] = token_for(user)
    return w


def snapshot(conn: Conn) -> str:
    """A digest of every table an action could change."""
    parts = []
    for table, order in _TABLES.items():
        query = f"SELECT t::text FROM {table} t ORDER BY {order}"  # noqa: S608
        parts.extend(row[0] for row in conn.execute(query))
    parts.extend(str(row) for row in conn.execute(_TOKENS))
    return "\n".join(parts)


# ---------------------------------------------------------------- the table

AGENCY_ADMINS = {"platform", "admin"}  # may act on landsd's users, keys, audit
PLATFORM = {"platform"}
SIGNED_IN = {"platform", "admin", "editor", "other_admin", "other_editor"}


@dataclass(frozen=True)
class Case:
    """One action, tried by every role."""

    name: str
    method: str
    path: Callable[[World], str]
    allowed: set[str]
    ok: int  # status when allowed
    body: Callable[[World], dict[str, Any]] | None = None
    # Status for signed-in roles that are refused: 403 unless told here.
    refused: dict[str, int] = field(default_factory=dict)
    # Text that a permitted listing must not show to these roles.
    hidden: dict[str, str] = field(default_factory=dict)


def _n() -> int:
    return next(_counter)


UI_CASES = [
    Case(
        "users list",
        "GET",
        lambda w: "/users/",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "target@landsd.test"},
    ),
    Case(
        "user create",
        "POST",
        lambda w: "/users/",
        AGENCY_ADMINS,
        302,
        lambda w: {
            "email": f"new{_n()}@landsd.test",
            "name": "N",
            "role": "agency_editor",
            "agency": "landsd",
            "password": PASSWORD,
        },
    ),
    Case(
        "user create as platform admin",
        "POST",
        lambda w: "/users/",
        PLATFORM,
        302,
        lambda w: {
            "email": f"root{_n()}@sdi.test",
            "name": "",
            "role": "platform_admin",
            "agency": "landsd",
            "password": PASSWORD,
        },
    ),
    Case(
        "user detail",
        "GET",
        lambda w: f"/users/{w.target.id}",
        AGENCY_ADMINS,
        200,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user update",
        "POST",
        lambda w: f"/users/{w.target.id}",
        AGENCY_ADMINS,
        302,
        lambda w: {"name": f"Renamed {_n()}", "role": "agency_admin"},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user deactivate",
        "POST",
        lambda w: f"/users/{w.target.id}",
        AGENCY_ADMINS,
        302,
        lambda w: {"name": "", "role": "agency_editor"},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user password reset",
        "POST",
        lambda w: f"/users/{w.target.id}/password",
        AGENCY_ADMINS,
        302,
        lambda w: {"password": "another long password"},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user's token revoke",
        "POST",
        lambda w: f"/users/{w.target.id}/tokens/{w.target_token}/revoke",
        AGENCY_ADMINS,
        302,
        lambda w: {},
        refused={"editor": 404, "other_admin": 404, "other_editor": 404},
    ),
    Case(
        "platform admin's account",
        "GET",
        lambda w: f"/users/{w.people.platform.id}",
        PLATFORM,
        200,
        refused={"admin": 404, "other_admin": 404, "editor": 404, "other_editor": 404},
    ),
    Case("agencies list", "GET", lambda w: "/agencies/", PLATFORM, 200),
    Case(
        "agency create",
        "POST",
        lambda w: "/agencies/",
        PLATFORM,
        302,
        lambda w: {
            "code": f"new{_n()}",
            "name_en": "New",
            "name_zh": "新",
            "contact_email": "",
        },
    ),
    Case("agency detail", "GET", lambda w: "/agencies/landsd", PLATFORM, 200),
    Case(
        "agency update",
        "POST",
        lambda w: "/agencies/landsd",
        PLATFORM,
        302,
        lambda w: {
            "name_en": f"Lands {_n()}",
            "name_zh": "地政總署",
            "contact_email": "gis@landsd.test",
        },
    ),
    Case("licences list", "GET", lambda w: "/licences/", PLATFORM, 200),
    Case(
        "licence create",
        "POST",
        lambda w: "/licences/",
        PLATFORM,
        302,
        lambda w: {"code": f"lic-{_n()}", "name_en": "A licence"},
    ),
    Case("licence detail", "GET", lambda w: "/licences/hk-csdi", PLATFORM, 200),
    Case(
        "licence update",
        "POST",
        lambda w: "/licences/hk-csdi",
        PLATFORM,
        302,
        lambda w: {"name_en": f"CSDI terms {_n()}", "name_zh": "條款"},
    ),
    Case(
        "keys list",
        "GET",
        lambda w: "/keys/",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "landsd vendor key"},
    ),
    Case(
        "landsd's keys list",
        "GET",
        lambda w: "/keys/?agency=landsd",
        AGENCY_ADMINS,
        200,
    ),
    Case(
        "key create",
        "POST",
        lambda w: "/keys/?agency=landsd",
        AGENCY_ADMINS,
        200,
        lambda w: {"name": f"key {_n()}", "layers": "landsd_roads"},
    ),
    Case(
        "key detail",
        "GET",
        lambda w: f"/keys/{w.key.id}",
        AGENCY_ADMINS,
        200,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "key grants",
        "POST",
        lambda w: f"/keys/{w.key.id}/layers",
        AGENCY_ADMINS,
        302,
        lambda w: {"layers": []},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "key revoke",
        "POST",
        lambda w: f"/keys/{w.key.id}/revoke",
        AGENCY_ADMINS,
        302,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "audit",
        "GET",
        lambda w: "/audit/",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "target@landsd.test"},
    ),
    Case(
        "landsd's audit", "GET", lambda w: "/audit/?agency=landsd", AGENCY_ADMINS, 200
    ),
    Case(
        "everyone's audit",
        "GET",
        lambda w: "/audit/?agency=td",
        PLATFORM | {"other_admin"},
        200,
    ),
    Case("own account", "GET", lambda w: "/account", SIGNED_IN, 200),
    Case(
        "own token create",
        "POST",
        lambda w: "/account/tokens",
        SIGNED_IN,
        200,
        lambda w: {"name": "mine"},
    ),
]

API_CASES = [
    Case("me", "GET", lambda w: "/api/me", SIGNED_IN, 200),
    Case("tokens list", "GET", lambda w: "/api/tokens", SIGNED_IN, 200),
    Case(
        "token create",
        "POST",
        lambda w: "/api/tokens",
        SIGNED_IN,
        201,
        lambda w: {"name": "ci"},
    ),
    Case(
        "user's tokens",
        "GET",
        lambda w: f"/api/users/{w.target.id}/tokens",
        AGENCY_ADMINS,
        200,
        refused={"editor": 404, "other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user's token revoke",
        "POST",
        lambda w: f"/api/tokens/{w.target_token}/revoke",
        AGENCY_ADMINS,
        200,
        refused={"editor": 404, "other_admin": 404, "other_editor": 404},
    ),
    Case(
        "users list",
        "GET",
        lambda w: "/api/users",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "target@landsd.test"},
    ),
    Case(
        "landsd's users",
        "GET",
        lambda w: "/api/users?agency=landsd",
        AGENCY_ADMINS,
        200,
    ),
    Case(
        "user create",
        "POST",
        lambda w: "/api/users",
        AGENCY_ADMINS,
        201,
        lambda w: {
            "email": f"api{_n()}@landsd.test",
            "password": PASSWORD,
            "role": "agency_editor",
            "agency": "landsd",
        },
    ),
    Case(
        "platform admin create",
        "POST",
        lambda w: "/api/users",
        PLATFORM,
        201,
        lambda w: {
            "email": f"root{_n()}@sdi.test",
            "password": PASSWORD,
            "role": "platform_admin",
        },
    ),
    Case(
        "user get",
        "GET",
        lambda w: f"/api/users/{w.target.id}",
        AGENCY_ADMINS,
        200,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user update",
        "PATCH",
        lambda w: f"/api/users/{w.target.id}",
        AGENCY_ADMINS,
        200,
        lambda w: {"name": f"R{_n()}", "active": False},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "user password",
        "POST",
        lambda w: f"/api/users/{w.target.id}/password",
        AGENCY_ADMINS,
        200,
        lambda w: {"password": "another long password"},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "platform admin's account",
        "GET",
        lambda w: f"/api/users/{w.people.platform.id}",
        PLATFORM,
        200,
        refused={"admin": 404, "other_admin": 404, "editor": 404, "other_editor": 404},
    ),
    Case("agencies list", "GET", lambda w: "/api/agencies", SIGNED_IN, 200),
    Case("agency get", "GET", lambda w: "/api/agencies/landsd", SIGNED_IN, 200),
    Case(
        "agency create",
        "POST",
        lambda w: "/api/agencies",
        PLATFORM,
        201,
        lambda w: {"code": f"api{_n()}", "name_en": "New"},
    ),
    Case(
        "agency update",
        "PATCH",
        lambda w: "/api/agencies/landsd",
        PLATFORM,
        200,
        lambda w: {"name_en": f"Lands {_n()}"},
    ),
    Case("licences list", "GET", lambda w: "/api/licences", SIGNED_IN, 200),
    Case(
        "licence create",
        "POST",
        lambda w: "/api/licences",
        PLATFORM,
        201,
        lambda w: {"code": f"api-{_n()}", "name_en": "L"},
    ),
    Case(
        "licence update",
        "PATCH",
        lambda w: "/api/licences/hk-csdi",
        PLATFORM,
        200,
        lambda w: {"name_en": f"CSDI {_n()}"},
    ),
    Case(
        "keys list",
        "GET",
        lambda w: "/api/keys",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "landsd vendor key"},
    ),
    Case(
        "landsd's keys", "GET", lambda w: "/api/keys?agency=landsd", AGENCY_ADMINS, 200
    ),
    Case(
        "key create",
        "POST",
        lambda w: "/api/keys",
        AGENCY_ADMINS,
        201,
        lambda w: {"name": f"k{_n()}", "layers": ["landsd_roads"], "agency": "landsd"},
    ),
    Case(
        "key get",
        "GET",
        lambda w: f"/api/keys/{w.key.id}",
        AGENCY_ADMINS,
        200,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "key layers",
        "PUT",
        lambda w: f"/api/keys/{w.key.id}/layers",
        AGENCY_ADMINS,
        200,
        lambda w: {"layers": []},
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "key revoke",
        "POST",
        lambda w: f"/api/keys/{w.key.id}/revoke",
        AGENCY_ADMINS,
        200,
        refused={"other_admin": 404, "other_editor": 404},
    ),
    Case(
        "audit",
        "GET",
        lambda w: "/api/audit",
        AGENCY_ADMINS | {"other_admin"},
        200,
        hidden={"other_admin": "target@landsd.test"},
    ),
    Case(
        "landsd's audit",
        "GET",
        lambda w: "/api/audit?agency=landsd",
        AGENCY_ADMINS,
        200,
    ),
]


def _roles_in_order(case: Case) -> list[str]:
    refused = [r for r in ORDER if r not in case.allowed]
    allowed = [r for r in ROLES if r in case.allowed]
    rest = [r for r in ROLES if r not in refused and r not in allowed]
    return refused + rest + allowed


def _expected(case: Case, role: str, api: bool) -> int:
    if role in case.allowed:
        return case.ok
    if role in ("anonymous", "inactive"):
        return 401 if api else 302
    return case.refused.get(role, 403)


def _ui_request(w: World, case: Case, role: str) -> TestResponse:
    client = w.clients[role]
    if case.method == "GET":
        return client.get(case.path(w))
    data = dict(case.body(w)) if case.body else {}
    data["csrf_token"] = csrf_token(client, "/login")
    return client.post(case.path(w), data=data)


def _api_request(w: World, case: Case, role: str) -> TestResponse:
    client = w.clients["anonymous"]
    headers = bearer(w.tokens[role]) if role in w.tokens else {}
    body = case.body(w) if case.body else None
    return client.open(case.path(w), method=case.method, headers=headers, json=body)


def _main(response: TestResponse) -> str:
    text = response.get_data(as_text=True)
    return text[text.find("<main") :][:800] if "<main" in text else text[:800]


def _run(w: World, conn: Conn, case: Case, api: bool) -> None:
    for role in _roles_in_order(case):
        before = snapshot(conn)
        response = (_api_request if api else _ui_request)(w, case, role)
        expected = _expected(case, role, api)
        where = f"{case.name} as {role}"
        assert response.status_code == expected, (
            f"{where}: {response.status_code} != {expected}\n{_main(response)}"
        )
        if role in case.hidden:
            assert case.hidden[role] not in response.get_data(as_text=True), where
        if role not in case.allowed:
            assert snapshot(conn) == before, f"{where} changed the database"
            if api:
                error = response.get_json()["error"]
                assert error["code"] and error["message"], where
            elif expected == 302:
                assert "/login" in response.headers["Location"], where


@pytest.mark.parametrize("case", UI_CASES, ids=lambda c: c.name)
def test_pages(world: World, conn: Conn, case: Case) -> None:
    _run(world, conn, case, api=False)


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.name)
def test_json_api(world: World, conn: Conn, case: Case) -> None:
    _run(world, conn, case, api=True)


def test_every_route_is_in_the_matrix(app: Flask, world: World) -> None:
    """Each of this module's endpoints (pages and API) has a row in the table."""
    from sdi.admin.api import ENDPOINTS

    adapter = app.url_map.bind("localhost")
    tried = set()
    for case in UI_CASES + API_CASES:
        endpoint, _ = adapter.match(case.path(world).split("?")[0], method=case.method)
        tried.add((endpoint, case.method))
    api = {
        (f"api.{ep.endpoint}", m)
        for ep in ENDPOINTS
        if ep.tag == "accounts"
        for m in ep.methods
    }
    pages = {
        (rule.endpoint, m)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0]
        in {"users", "agencies", "licences", "keys", "audit"}
        for m in rule.methods or ()
        if m in ("GET", "POST")
    }
    # Revoking one's own token is tested in test_auth and test_api_accounts
    # (it needs the owner's token id); here an admin revokes a user's.
    assert (api | pages) - tried == set()


def test_other_agency_key_by_guessed_id_is_not_found(world: World, conn: Conn) -> None:
    """An agency admin probing td's key ids learns nothing, whatever the route."""
    client = world.clients["admin"]
    token = bearer(world.tokens["admin"])
    kid = world.other_key.id
    before = snapshot(conn)
    csrf = csrf_token(client, "/login")
    assert client.get(f"/keys/{kid}").status_code == 404
    assert (
        client.post(f"/keys/{kid}/revoke", data={"csrf_token": csrf}).status_code == 404
    )
    assert (
        client.post(
            f"/keys/{kid}/layers", data={"csrf_token": csrf, "layers": []}
        ).status_code
        == 404
    )
    for method, path, body in (
        ("GET", f"/api/keys/{kid}", None),
        ("POST", f"/api/keys/{kid}/revoke", None),
        ("PUT", f"/api/keys/{kid}/layers", {"layers": []}),
        ("GET", "/api/keys/999999", None),
    ):
        response = client.open(path, method=method, headers=token, json=body)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "NotFound"
    # Same message for an existing and a missing id.
    a = client.get(f"/api/keys/{kid}", headers=token).get_json()["error"]["message"]
    b = client.get("/api/keys/999999", headers=token).get_json()["error"]["message"]
    assert a.replace(str(kid), "N") == b.replace("999999", "N")
    assert snapshot(conn) == before


def test_forms_without_csrf_token_are_refused(world: World, conn: Conn) -> None:
    """Every page form needs its CSRF token, whoever posts it."""
    client = world.clients["platform"]
    before = snapshot(conn)
    for case in UI_CASES:
        if case.method != "POST":
            continue
        data = dict(case.body(world)) if case.body else {}
        response = client.post(case.path(world), data=data)
        assert response.status_code == 400, case.name
        assert "security token" in response.get_data(as_text=True)
    assert snapshot(conn) == before
