"""NUL characters in admin input are a 400 that says so, not a 500 (issue 9).

PostgreSQL text cannot hold U+0000, and psycopg refuses such a value with a
``DataError``: a NUL in any text field of the JSON API (a layer's title, a
token's name, a user's name, an agency's name, a withdrawal's reason), in a
page form (the sign-in form, anonymously), in an upload's note, or in a URL
answered 500 "Something went wrong on the server" and logged a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import People, bearer
from tests.admin.layer_helpers import CSRF_FIELD, signed_in

NUL = "a\x00b"


def _assert_refused(answer: requests.Response) -> None:
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert "NUL" in answer.text


def test_json_api_text_fields_with_nul_are_400(
    served: str,
    people: People,
    make_layer: Callable[..., Layer],
    token_for: Callable[[User], str],
) -> None:
    make_layer(people.agency, "roads")
    auth = bearer(token_for(people.platform))
    api = f"{served}/api"
    calls = [
        ("POST", "/layers", {"slug": "x", "title_en": NUL, "licence": "hk-csdi",
                             "agency": "landsd"}),
        ("POST", "/layers", {"slug": "y", "title_en": "Y", "licence": "hk-csdi",
                             "agency": "landsd", "keywords": [NUL]}),
        ("PATCH", "/layers/roads", {"abstract_en": NUL}),
        ("POST", "/tokens", {"name": NUL}),
        ("PATCH", f"/users/{people.editor.id}", {"name": NUL}),
        ("PATCH", "/agencies/landsd", {"name_en": NUL}),
    ]  # fmt: skip
    for method, path, body in calls:
        answer = requests.request(
            method, f"{api}{path}", json=body, headers=auth, timeout=30
        )
        _assert_refused(answer)
        assert answer.json()["error"]["code"] == "InvalidParameterValue"
    _assert_refused(requests.get(f"{api}/layers/a%00b", headers=auth, timeout=30))


def test_page_forms_with_nul_are_400(served: str, people: People) -> None:
    anonymous = requests.Session()
    token = CSRF_FIELD.search(anonymous.get(f"{served}/login", timeout=30).text)
    assert token
    answer = anonymous.post(
        f"{served}/login",
        data={"email": f"{NUL}@x.test", "password": "x" * 12, "csrf_token": token[1]},
        timeout=30,
    )
    _assert_refused(answer)
    browser, csrf = signed_in(served, people.admin)
    answer = browser.post(
        f"{served}/account/tokens", data={"name": NUL, "csrf_token": csrf}, timeout=30
    )
    _assert_refused(answer)


def test_an_upload_note_with_nul_is_400_and_its_file_discarded(
    served: str,
    people: People,
    settings: Settings,
    make_layer: Callable[..., Layer],
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "roads")
    data = tmp_path / "roads.geojson"
    data.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with data.open("rb") as file:
        answer = requests.post(
            f"{served}/api/layers/roads/versions",
            files={"file": ("roads.geojson", file)},
            data={"note": NUL},
            headers=bearer(token_for(people.admin)),
            timeout=30,
        )
    _assert_refused(answer)
    spool = settings.upload_dir / "spool"
    left = [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []
    assert left == []
