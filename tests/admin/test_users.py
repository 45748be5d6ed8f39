"""User, agency and licence pages: forms, messages, what each role is offered."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from playwright.sync_api import Route, sync_playwright

from sdi import registry
from sdi.registry import apikeys, audit
from sdi.registry.models import Layer, User
from tests.admin.conftest import PASSWORD, Conn, People, csrf_token, login


def _options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, name
    return re.findall(r'<option[^>]*value="([^"]*)"', select[1])


def test_agency_admin_adds_and_manages_a_user(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.admin)
    page = client.get("/users/").get_data(as_text=True)
    assert people.editor.email in page and "editor@td.test" not in page
    assert _options(page, "role") == ["agency_editor", "agency_admin"]
    assert _options(page, "agency") == ["landsd"]
    for label in ('for="email"', 'for="password"', 'for="role"'):
        assert label in page

    token = csrf_token(client, "/users/")
    form = {
        "email": "Surveyor@LandsD.test",
        "name": "Surveyor",
        "role": "agency_editor",
        "agency": "landsd",
        "password": PASSWORD,
        "csrf_token": token,
    }
    response = client.post("/users/", data=form)
    assert response.status_code == 302
    assert "surveyor@landsd.test is created" in client.get("/users/").get_data(
        as_text=True
    )
    new = registry.get_user_by_email(conn, "surveyor@landsd.test")
    assert new is not None and new.agency_id == people.agency.id

    again = client.post("/users/", data=form)
    assert again.status_code == 409
    assert "already exists" in again.get_data(as_text=True)
    short = client.post(
        "/users/", data={**form, "email": "x@landsd.test", "password": "short"}
    )
    assert short.status_code == 400
    assert 'aria-invalid="true"' in short.get_data(as_text=True)

    detail = client.get(f"/users/{new.id}")
    assert detail.status_code == 200
    response = client.post(
        f"/users/{new.id}",
        data={"name": "Chief Surveyor", "role": "agency_admin", "csrf_token": token},
    )
    assert response.status_code == 302
    changed = registry.users.get_user(conn, new.id)
    assert (changed.name, changed.role, changed.active) == (
        "Chief Surveyor",
        "agency_admin",
        False,  # the "active" box was not ticked
    )
    assert [e.action for e in audit.list_audit(conn, object_id=new.email)][:1] == [
        "update"
    ]
    response = client.post(
        f"/users/{new.id}/password",
        data={"password": "fresh password 1", "csrf_token": token},
    )
    assert response.status_code == 302
    client.post(
        f"/users/{new.id}",
        data={
            "name": "Chief Surveyor",
            "role": "agency_admin",
            "active": "y",
            "csrf_token": token,
        },
    )
    assert (
        login(
            client.application.test_client(), new.email, "fresh password 1"
        ).status_code
        == 302
    )


def test_admin_cannot_deactivate_or_demote_themselves(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.admin)
    page = client.get(f"/users/{people.admin.id}").get_data(as_text=True)
    assert "You cannot change your own role" in page
    token = csrf_token(client, "/users/")
    response = client.post(
        f"/users/{people.admin.id}",
        data={
            "name": "Me",
            "role": "agency_editor",
            "active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400
    assert registry.users.get_user(conn, people.admin.id).role == "agency_admin"


def test_platform_admin_is_offered_every_agency_and_role(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.platform)
    page = client.get("/users/").get_data(as_text=True)
    assert "editor@td.test" in page and people.editor.email in page
    assert _options(page, "role") == [
        "agency_editor",
        "agency_admin",
        "platform_admin",
    ]
    assert _options(page, "agency") == ["landsd", "td"]
    token = csrf_token(client, "/users/")
    response = client.post(
        "/users/",
        data={
            "email": "gis@td.test",
            "role": "agency_admin",
            "agency": "td",
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    user = registry.get_user_by_email(conn, "gis@td.test")
    assert user is not None and user.agency_id == people.other_agency.id


def test_agency_and_licence_pages(
    client_for: Callable[[User], FlaskClient], people: People, conn: Conn
) -> None:
    client = client_for(people.platform)
    page = client.get("/agencies/").get_data(as_text=True)
    assert '<span lang="zh-HK">地政總署</span>' in page
    assert 'lang="zh-HK"' in re.search(r'<input[^>]*name="name_zh"[^>]*>', page)[0]  # type: ignore[index]
    token = csrf_token(client, "/agencies/")
    response = client.post(
        "/agencies/",
        data={
            "code": "hyd",
            "name_en": "Highways Department",
            "name_zh": "路政署",
            "contact_email": "gis@hyd.test",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    bad = client.post(
        "/agencies/", data={"code": "Bad Code!", "name_en": "X", "csrf_token": token}
    )
    assert bad.status_code == 400 and "lower-case" in bad.get_data(as_text=True)
    dup = client.post(
        "/agencies/", data={"code": "hyd", "name_en": "X", "csrf_token": token}
    )
    assert dup.status_code == 409
    response = client.post(
        "/agencies/hyd",
        data={
            "name_en": "Highways Dept",
            "name_zh": "路政署",
            "contact_email": "",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert registry.get_agency(conn, "hyd").name_en == "Highways Dept"
    assert client.get("/agencies/nope").status_code == 404

    page = client.get("/licences/").get_data(as_text=True)
    assert "hk-csdi" in page and "restricted" in page
    response = client.post(
        "/licences/",
        data={
            "code": "ogl-hk",
            "name_en": "Open Government Licence",
            "url": "https://x.test",
            "restricted": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert registry.get_licence(conn, "ogl-hk").restricted
    response = client.post(
        "/licences/hk-csdi",
        data={
            "name_en": "CSDI Terms",
            "name_zh": "條款",
            "url": "ftp://no",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400 and "https://" in response.get_data(as_text=True)
    assert registry.get_licence(conn, "hk-csdi").name_en.startswith("CSDI Portal")
    # No delete route: the seeded licences stay.
    assert (
        client.post("/licences/hk-csdi/delete", data={"csrf_token": token}).status_code
        == 404
    )


def test_navigation_by_role(
    client_for: Callable[[User], FlaskClient], people: People
) -> None:
    links = {
        "platform": {"/users/", "/keys/", "/audit/", "/agencies/", "/licences/"},
        "admin": {"/users/", "/keys/", "/audit/"},
        "editor": set(),
    }
    for role, expected in links.items():
        page = client_for(getattr(people, role)).get("/account").get_data(as_text=True)
        nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S)
        assert nav, role
        hrefs = set(re.findall(r'href="([^"]+)"', nav[1]))
        admin_links = hrefs & {
            "/users/",
            "/keys/",
            "/audit/",
            "/agencies/",
            "/licences/",
        }
        assert admin_links == expected, role
        assert "/" in hrefs  # layers, for everyone


def test_pages_are_self_contained_and_labelled(
    client_for: Callable[[User], FlaskClient], people: People
) -> None:
    client = client_for(people.platform)
    for path in (
        "/users/",
        "/agencies/",
        "/licences/",
        "/keys/?agency=landsd",
        "/audit/",
        "/account",
        "/login",
    ):
        html = client.get(path).get_data(as_text=True)
        assert (
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            in html
        )
        # No external assets: every src/href to a stylesheet or script is local.
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            if ref.startswith(("http://", "https://", "//")):
                assert "stylesheet" not in html.split(ref)[0][-80:], (path, ref)
        assert not re.search(
            r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', html
        ), path
        # Every visible form control has a label.
        for control_id in re.findall(
            r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*id="([^"]+)"', html
        ):
            assert f'for="{control_id}"' in html, (path, control_id)


def test_pages_fit_a_laptop_and_a_phone_offline(
    served: str, people: People, conn: Conn, make_layer: Callable[..., Layer]
) -> None:
    """Chromium at 1280 and 390 px: no sideways scrolling, nothing from other hosts."""
    make_layer(people.agency, "landsd_lots_with_a_rather_long_identifier", "restricted")
    apikeys.create_key(conn, people.admin, people.agency.id, "GIS vendor", [])
    foreign: list[str] = []

    def refuse_other_hosts(route: Route) -> None:
        if route.request.url.startswith(served):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        try:
            for who, paths in (
                ("platform", ("/users/", "/agencies/", "/licences/", "/audit/")),
                ("admin", ("/users/", "/keys/", "/audit/", "/account")),
            ):
                for width in (1280, 390):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.route("**/*", refuse_other_hosts)
                    page.goto(served + "/login")
                    page.fill("#email", getattr(people, who).email)
                    page.fill("#password", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_load_state()
                    for path in paths:
                        page.goto(served + path)
                        assert page.locator("h1").is_visible(), (who, path)
                        assert (
                            page.evaluate(
                                "getComputedStyle(document.querySelector('header'))"
                                ".backgroundColor"
                            )
                            != "rgba(0, 0, 0, 0)"
                        ), "admin.css did not load"
                        scroll = page.evaluate("document.documentElement.scrollWidth")
                        assert scroll <= width, (who, path, width, scroll)
                    page.close()
        finally:
            browser.close()
    assert foreign == []
