"""Who may make a layer public or restricted: agency admins, not editors (HTTP)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
import requests

from sdi import registry
from sdi.registry.models import Layer, User
from tests.admin.conftest import Conn, People, bearer
from tests.admin.layer_helpers import signed_in


@pytest.fixture
def layer(people: People, make_layer: Callable[..., Layer]) -> Layer:
    return make_layer(people.agency, "landsd_secret", "restricted")


def _edit(
    session: requests.Session, base: str, token: str, layer: Layer, **fields: Any
) -> requests.Response:
    """Post the edit form as a browser would (``visibility=None``: not sent)."""
    data = {
        "csrf_token": token,
        "title_en": layer.title_en,
        "licence_id": str(layer.licence_id),
        "update_frequency": "",
        "visibility": layer.visibility,
        **fields,
    }
    data = {k: v for k, v in data.items() if v is not None}
    return session.post(
        f"{base}/layers/{layer.slug}/edit",
        data=data,
        allow_redirects=False,
        timeout=30,
    )


def test_an_editor_cannot_change_visibility_on_the_page(
    served: str, conn: Conn, people: People, layer: Layer
) -> None:
    session, token = signed_in(served, people.editor)
    form = session.get(f"{served}/layers/{layer.slug}/edit", timeout=30).text
    radios = [line for line in form.splitlines() if 'name="visibility"' in line]
    assert radios and all("disabled" in line for line in radios)
    assert "Only an agency admin can make the layer public or restricted." in form

    refused = _edit(session, served, token, layer, visibility="public")
    assert refused.status_code == 403
    message = html.unescape(refused.text)
    assert "Only an agency admin can make a layer public or restricted" in message
    assert registry.get_layer(conn, layer.slug).visibility == "restricted"

    # The browser does not send disabled radios: other metadata still saves.
    saved = _edit(session, served, token, layer, visibility=None, title_en="Renamed")
    assert saved.status_code == 302, saved.text
    after = registry.get_layer(conn, layer.slug)
    assert after.title_en == "Renamed" and after.visibility == "restricted"


@pytest.mark.parametrize("role", ["admin", "platform"])
def test_admins_change_visibility_on_the_page(
    served: str, conn: Conn, people: People, layer: Layer, role: str
) -> None:
    session, token = signed_in(served, getattr(people, role))
    form = session.get(f"{served}/layers/{layer.slug}/edit", timeout=30).text
    assert "disabled" not in form
    made_public = _edit(session, served, token, layer, visibility="public")
    assert made_public.status_code == 302, made_public.text
    assert registry.get_layer(conn, layer.slug).visibility == "public"


def test_an_editor_cannot_change_visibility_through_the_api(
    served: str,
    conn: Conn,
    people: People,
    layer: Layer,
    token_for: Callable[[User], str],
) -> None:
    url = f"{served}/api/layers/{layer.slug}"
    editor = bearer(token_for(people.editor))
    refused = requests.patch(
        url, json={"visibility": "public"}, headers=editor, timeout=30
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "Forbidden"
    assert (
        "Only an agency admin can make a layer public or restricted" in error["message"]
    )
    # Nothing of the same request is saved.
    mixed = requests.patch(
        url, json={"visibility": "public", "title_en": "Changed"}, headers=editor,
        timeout=30,
    )  # fmt: skip
    assert mixed.status_code == 403
    assert registry.get_layer(conn, layer.slug).title_en == layer.title_en

    # Other metadata, with the visibility restated unchanged, is fine.
    same = requests.patch(
        url, json={"visibility": "restricted", "theme": "Land"}, headers=editor,
        timeout=30,
    )  # fmt: skip
    assert same.status_code == 200, same.text
    assert same.json()["theme"] == "Land" and same.json()["visibility"] == "restricted"

    # Agency admin: either direction.
    admin = bearer(token_for(people.admin))
    public = requests.patch(
        url, json={"visibility": "public"}, headers=admin, timeout=30
    )
    assert public.status_code == 200 and public.json()["visibility"] == "public"
    back = requests.patch(
        url, json={"visibility": "restricted"}, headers=editor, timeout=30
    )
    assert back.status_code == 403
    assert registry.get_layer(conn, layer.slug).visibility == "public"
