"""The admin JSON API: authentication, errors, OpenAPI, and every accounts endpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from sdi.admin.api import ENDPOINTS
from sdi.admin.api.openapi import openapi_path
from sdi.registry import apikeys, audit
from sdi.registry.models import Layer, User
from tests.admin.conftest import PASSWORD, Conn, People, bearer


@pytest.fixture
def api(
    client: FlaskClient, people: People, token_for: Callable[[User], str]
) -> Callable[..., Any]:
    """``api(role, method, path, json=None)`` -> response, with that role's token."""
    tokens: dict[str, str] = {}

    def call(role: str, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        if role not in tokens:
            tokens[role] = token_for(getattr(people, role))
        return client.open(
            path, method=method, headers=bearer(tokens[role]), json=json, **kw
        )

    return call


def error_of(response: Any) -> dict[str, str]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    return dict(body["error"])


# ------------------------------------------------------------ auth and errors


def test_missing_or_bad_token_is_401(client: FlaskClient, people: People) -> None:
    for headers in (
        {},
        bearer("sdit_nothing_here"),
        bearer(""),
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401
        assert error_of(response)["code"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Set-Cookie" not in response.headers


def test_token_authenticates_and_expires(
    client: FlaskClient, people: People, token_for: Callable[[User], str], conn: Conn
) -> None:
    token = token_for(people.editor)
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == people.editor.email and body["role"] == "agency_editor"
    assert "password_hash" not in body
    assert "Set-Cookie" not in response.headers
    conn.execute("UPDATE sdi.api_tokens SET expires_at = now() - interval '1s'")
    assert client.get("/api/me", headers=bearer(token)).status_code == 401


def test_errors_are_json(api: Callable[..., Any]) -> None:
    response = api("admin", "GET", "/api/nothing/here")
    assert response.status_code == 404 and error_of(response)["code"] == "NotFound"
    response = api("admin", "DELETE", "/api/me")
    assert response.status_code == 405
    assert error_of(response)["code"] == "MethodNotAllowed"
    assert response.headers["Allow"]
    response = api(
        "admin",
        "POST",
        "/api/tokens",
        data="{not json",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "JSON object" in error_of(response)["message"]
    response = api("admin", "POST", "/api/tokens", data="name=x")
    assert response.status_code == 400
    response = api("admin", "POST", "/api/tokens", json=["name"])
    assert response.status_code == 400 and "object" in error_of(response)["message"]


def test_bad_input_messages(api: Callable[..., Any]) -> None:
    cases = [
        ({}, "Field 'name' is required."),
        ({"name": ""}, "Field 'name' must not be empty."),
        ({"name": 3}, "Field 'name' must be a string."),
        ({"name": "x" * 101}, "Field 'name' takes at most 100 characters."),
        ({"name": "x", "colour": "red"}, "Unknown field(s): colour"),
        ({"name": "x", "expires_at": "tomorrow"}, "ISO 8601"),
        ({"name": "x", "expires_at": "2099-01-01T00:00:00"}, "time zone"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "future"),
    ]
    for body, message in cases:
        response = api("editor", "POST", "/api/tokens", json=body)
        assert response.status_code == 400, body
        error = error_of(response)
        assert error["code"] == "InvalidParameterValue"
        assert message in error["message"], (body, error)


# ------------------------------------------------------------ OpenAPI


def test_openapi_document_is_valid_and_lists_every_route(
    client: FlaskClient, app: Flask
) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"] == "3.0.3"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": "/api"}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

    # Every Flask route of the API blueprint is documented (with its methods) ...
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = openapi_path(rule.rule.removeprefix("/api"))
        assert path in doc["paths"], path
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], (method, path)
    # ... and everything documented is a route.
    assert len(ENDPOINTS) == len({(e.rule, e.methods) for e in ENDPOINTS})
    documented = {(p, m) for p, item in doc["paths"].items() for m in item}
    routed = {
        (openapi_path(r.rule.removeprefix("/api")), m.lower())
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.")
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert documented == routed

    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["summary"] and op["responses"], (method, path)
            assert all(code.isdigit() for code in op["responses"])
            declared = {
                p["name"] for p in op.get("parameters", []) if p["in"] == "path"
            }
            assert declared == set(_braces(path)), path
            for response in op["responses"].values():
                assert response["description"]
                for media in response.get("content", {}).values():
                    _check_schema(media["schema"], doc)
            if "requestBody" in op:
                for media in op["requestBody"]["content"].values():
                    _check_schema(media["schema"], doc)
            if op["security"]:
                assert "401" in op["responses"]
    assert len(ids) == len(set(ids))


def _braces(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)


def _check_schema(schema: dict[str, Any], doc: dict[str, Any]) -> None:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    jsonschema.Draft4Validator.check_schema(schema)


# ------------------------------------------------------------ me and tokens


def test_tokens(api: Callable[..., Any], client: FlaskClient, people: People) -> None:
    soon = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    response = api(
        "editor", "POST", "/api/tokens", json={"name": "ci", "expires_at": soon}
    )
    assert response.status_code == 201
    created = response.get_json()
    assert created["token"].startswith(f"sdit_{created['prefix']}_")
    assert created["status"] == "active" and "token_hash" not in created
    me = client.get("/api/me", headers=bearer(created["token"]))
    assert me.get_json()["id"] == people.editor.id

    listed = api("editor", "GET", "/api/tokens").get_json()
    assert [t["name"] for t in listed][:1] == ["ci"]
    assert all("token" not in t and "token_hash" not in t for t in listed)

    # Another agency's token is not found (the editor's own admin may revoke
    # it: test_credentials_http.py).
    response = api("other_admin", "POST", f"/api/tokens/{created['id']}/revoke")
    assert response.status_code == 404
    response = api("editor", "POST", f"/api/tokens/{created['id']}/revoke")
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert client.get("/api/me", headers=bearer(created["token"])).status_code == 401
    assert api("editor", "POST", "/api/tokens/999999/revoke").status_code == 404


# ------------------------------------------------------------ agencies


def test_agencies(api: Callable[..., Any], conn: Conn) -> None:
    response = api(
        "platform",
        "POST",
        "/api/agencies",
        json={
            "code": "hyd",
            "name_en": "Highways Department",
            "name_zh": "路政署",
            "contact_email": "gis@hyd.test",
        },
    )
    assert response.status_code == 201
    assert response.get_json()["name_zh"] == "路政署"
    assert api("editor", "GET", "/api/agencies").get_json()[0]["code"] == "hyd"
    assert api("editor", "GET", "/api/agencies/hyd").get_json()["code"] == "hyd"
    response = api("editor", "GET", "/api/agencies/nope")
    assert response.status_code == 404 and "nope" in error_of(response)["message"]

    response = api(
        "platform", "POST", "/api/agencies", json={"code": "hyd", "name_en": "X"}
    )
    assert response.status_code == 409 and error_of(response)["code"] == "Conflict"
    for body, message in (
        ({"code": "Bad!", "name_en": "X"}, "lower-case"),
        ({"code": "ok"}, "'name_en' is required"),
        ({"code": "ok2", "name_en": ""}, "must not be empty"),
    ):
        response = api("platform", "POST", "/api/agencies", json=body)
        assert response.status_code == 400 and message in error_of(response)["message"]

    response = api(
        "platform", "PATCH", "/api/agencies/hyd", json={"contact_email": "x@hyd.test"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["contact_email"] == "x@hyd.test" and body["name_zh"] == "路政署"
    assert api("platform", "PATCH", "/api/agencies/nope", json={}).status_code == 404
    assert (
        api("platform", "PATCH", "/api/agencies/hyd", json={"code": "x"}).status_code
        == 400
    )
    entry = audit.list_audit(conn, object_type="agency", object_id="hyd")[0]
    assert entry.action == "update" and entry.actor == "platform@sdi.test"


# ------------------------------------------------------------ users


def test_users(api: Callable[..., Any], people: People, conn: Conn) -> None:
    # An agency admin's new user joins their agency by default.
    response = api(
        "admin",
        "POST",
        "/api/users",
        json={
            "email": "New@LandsD.test",
            "password": PASSWORD,
            "role": "agency_editor",
            "name": "New",
        },
    )
    assert response.status_code == 201
    new = response.get_json()
    assert new["email"] == "new@landsd.test" and new["agency_id"] == people.agency.id
    assert "password_hash" not in new

    listed = api("admin", "GET", "/api/users").get_json()
    assert {u["agency_id"] for u in listed} == {people.agency.id}
    everyone = api("platform", "GET", "/api/users").get_json()
    assert {u["email"] for u in everyone} >= {"admin@td.test", "platform@sdi.test"}
    td = api("platform", "GET", "/api/users?agency=td").get_json()
    assert {u["email"] for u in td} == {"admin@td.test", "editor@td.test"}
    assert api("platform", "GET", "/api/users?agency=nope").status_code == 404

    uid = new["id"]
    assert api("admin", "GET", f"/api/users/{uid}").get_json()["name"] == "New"
    response = api(
        "admin",
        "PATCH",
        f"/api/users/{uid}",
        json={"role": "agency_admin", "active": False},
    )
    assert response.status_code == 200
    assert (response.get_json()["role"], response.get_json()["active"]) == (
        "agency_admin",
        False,
    )
    new_password = {"password": "mossy kettle orbit"}
    response = api("admin", "POST", f"/api/users/{uid}/password", json=new_password)
    assert response.status_code == 200

    for body, status, message in (
        (
            {"email": "new@landsd.test", "password": PASSWORD, "role": "agency_editor"},
            409,
            "already exists",
        ),
        (
            {"email": "x@landsd.test", "password": "short", "role": "agency_editor"},
            400,
            "at least 10",
        ),
        (
            {"email": "not-an-email", "password": PASSWORD, "role": "agency_editor"},
            400,
            "e-mail",
        ),
        (
            {"email": "x@landsd.test", "password": PASSWORD, "role": "boss"},
            400,
            "one of",
        ),
        ({"email": "x@landsd.test", "password": PASSWORD}, 400, "'role' is required"),
        (
            {
                "email": "x@landsd.test",
                "password": PASSWORD,
                "role": "agency_editor",
                "agency": "nope",
            },
            404,
            "nope",
        ),
        (
            {
                "email": "x@landsd.test",
                "password": PASSWORD,
                "role": "agency_editor",
                "agency": "td",
            },
            403,
            "permission",
        ),
        (
            {"email": "x@landsd.test", "password": PASSWORD, "role": "platform_admin"},
            403,
            "permission",
        ),
    ):
        response = api("admin", "POST", "/api/users", json=body)
        assert response.status_code == status, body
        assert message in error_of(response)["message"], body
    # A platform admin creating an agency user must say which agency.
    response = api(
        "platform",
        "POST",
        "/api/users",
        json={"email": "y@x.test", "password": PASSWORD, "role": "agency_editor"},
    )
    assert (
        response.status_code == 400
        and "belongs to an agency" in error_of(response)["message"]
    )

    response = api(
        "admin", "PATCH", f"/api/users/{people.admin.id}", json={"active": False}
    )
    assert response.status_code == 400 and "yourself" in error_of(response)["message"]
    response = api("admin", "PATCH", f"/api/users/{uid}", json={"active": "no"})
    assert response.status_code == 400 and "boolean" in error_of(response)["message"]
    response = api(
        "admin", "PATCH", f"/api/users/{uid}", json={"role": "platform_admin"}
    )
    assert response.status_code == 403
    response = api(
        "admin", "POST", f"/api/users/{uid}/password", json={"password": "x"}
    )
    assert response.status_code == 400
    assert api("admin", "GET", "/api/users/999999").status_code == 404
    actions = [e.action for e in audit.list_audit(conn, object_id="new@landsd.test")]
    assert actions == ["reset_password", "update", "create"]


# ------------------------------------------------------------ licences


def test_licences(api: Callable[..., Any], conn: Conn) -> None:
    codes = [lic["code"] for lic in api("editor", "GET", "/api/licences").get_json()]
    assert codes[:2] == ["hk-csdi", "hk-datagovhk"]
    response = api(
        "platform",
        "POST",
        "/api/licences",
        json={
            "code": "ogl-hk",
            "name_en": "Open Government Licence (HK)",
            "url": "https://example.test/ogl",
            "restricted": False,
        },
    )
    assert response.status_code == 201 and response.get_json()["code"] == "ogl-hk"
    assert (
        api(
            "platform", "POST", "/api/licences", json={"code": "ogl-hk", "name_en": "X"}
        ).status_code
        == 409
    )
    for body, message in (
        ({"code": "Bad Code", "name_en": "X"}, "lower-case"),
        ({"code": "x-1", "name_en": "X", "url": "javascript:alert(1)"}, "https://"),
        ({"code": "x-2", "name_en": "X", "restricted": "yes"}, "boolean"),
    ):
        response = api("platform", "POST", "/api/licences", json=body)
        assert response.status_code == 400 and message in error_of(response)["message"]
    response = api(
        "platform",
        "PATCH",
        "/api/licences/hk-csdi",
        json={"attribution_en": "From CSDI"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["attribution_en"] == "From CSDI"
    assert body["name_zh"] == "空間數據共享平台使用條款及條件"
    assert api("platform", "PATCH", "/api/licences/nope", json={}).status_code == 404
    assert (
        api(
            "platform", "PATCH", "/api/licences/hk-csdi", json={"code": "x"}
        ).status_code
        == 400
    )


# ------------------------------------------------------------ API keys


def test_key_lifecycle(
    api: Callable[..., Any],
    people: People,
    conn: Conn,
    make_layer: Callable[..., Layer],
) -> None:
    roads = make_layer(people.agency, "landsd_roads", "restricted")
    lots = make_layer(people.agency, "landsd_lots", "restricted")
    make_layer(people.other_agency, "td_buses", "restricted")
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    response = api(
        "admin",
        "POST",
        "/api/keys",
        json={"name": "Vendor", "layers": ["landsd_roads"], "expires_at": soon},
    )
    assert response.status_code == 201
    created = response.get_json()
    assert created["key"].startswith(f"sdi_{created['prefix']}_")
    assert created["layers"] == ["landsd_roads"] and created["status"] == "active"
    assert "key_hash" not in created
    found = apikeys.verify(conn, created["key"])
    assert found is not None and found[1] == {roads.id}

    kid = created["id"]
    got = api("admin", "GET", f"/api/keys/{kid}").get_json()
    assert "key" not in got and got["layers"] == ["landsd_roads"]
    response = api(
        "admin",
        "PUT",
        f"/api/keys/{kid}/layers",
        json={"layers": ["landsd_lots", "landsd_roads"]},
    )
    assert response.get_json()["layers"] == ["landsd_lots", "landsd_roads"]
    assert apikeys.verify(conn, created["key"])[1] == {roads.id, lots.id}  # type: ignore[index]
    listed = api("admin", "GET", "/api/keys").get_json()
    assert [k["id"] for k in listed] == [kid] and "key" not in listed[0]

    response = api("admin", "POST", f"/api/keys/{kid}/revoke")
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert apikeys.verify(conn, created["key"]) is None
    assert api("admin", "POST", f"/api/keys/{kid}/revoke").status_code == 200

    # Platform admins name the agency.
    response = api("platform", "POST", "/api/keys", json={"name": "P"})
    assert response.status_code == 400 and "agency" in error_of(response)["message"]
    response = api(
        "platform",
        "POST",
        "/api/keys",
        json={"name": "P", "agency": "td", "layers": ["td_buses"]},
    )
    assert response.status_code == 201
    response = api(
        "platform",
        "POST",
        "/api/keys",
        json={"name": "P", "agency": "td", "layers": ["landsd_roads"]},
    )
    assert (
        response.status_code == 400
        and "another agency" in error_of(response)["message"]
    )
    assert len(api("platform", "GET", "/api/keys").get_json()) == 2


def test_key_bad_input(
    api: Callable[..., Any], people: People, make_layer: Callable[..., Layer]
) -> None:
    make_layer(people.other_agency, "td_buses", "restricted")
    for body, status, message in (
        ({}, 400, "'name' is required"),
        ({"name": "k", "layers": "landsd_roads"}, 400, "must be an array"),
        ({"name": "k", "layers": [1]}, 400, "Field 'layers[0]' must be a string."),
        ({"name": "k", "layers": ["nope"]}, 404, "nope"),
        ({"name": "k", "layers": ["td_buses"]}, 404, "td_buses"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00+08:00"}, 400, "future"),
        ({"name": "k", "agency": "td"}, 403, "permission"),
        ({"name": "k", "agency": "nope"}, 404, "nope"),
    ):
        response = api("admin", "POST", "/api/keys", json=body)
        assert response.status_code == status, body
        assert message in error_of(response)["message"], (body, error_of(response))
    assert api("admin", "GET", "/api/keys").get_json() == []
    response = api("admin", "PUT", "/api/keys/999999/layers", json={"layers": []})
    assert response.status_code == 404
    response = api("admin", "PUT", "/api/keys/999999/layers", json={})
    assert response.status_code == 400


# ------------------------------------------------------------ audit


def test_audit(api: Callable[..., Any], people: People) -> None:
    for role in ("platform", "admin", "other_admin", "editor"):  # tokens first
        api(role, "GET", "/api/me")
    api("admin", "PATCH", f"/api/users/{people.editor.id}", json={"name": "Ed"})
    api(
        "other_admin",
        "PATCH",
        f"/api/users/{people.other_editor.id}",
        json={"name": "Oe"},
    )
    own = api("admin", "GET", "/api/audit").get_json()
    assert own[0]["object_id"] == people.editor.email and own[0]["action"] == "update"
    assert own[0]["details"] == {"name": {"from": "", "to": "Ed"}}
    assert people.other_editor.email not in {e["object_id"] for e in own}
    ids = [e["id"] for e in own]
    assert ids == sorted(ids, reverse=True)
    everyone = api("platform", "GET", "/api/audit?limit=1").get_json()
    assert len(everyone) == 1 and everyone[0]["object_id"] == people.other_editor.email
    second = api("platform", "GET", "/api/audit?limit=1&offset=1").get_json()
    assert second[0]["object_id"] == people.editor.email
    for query in ("limit=0", "limit=5000", "offset=-1", "limit=x"):
        response = api("platform", "GET", f"/api/audit?{query}")
        assert response.status_code == 400, query
    assert api("editor", "GET", "/api/audit").status_code == 403
