"""Admin responses are not stored by browsers or caches (red team of issue 9).

The account page shows a new API token once, the key pages a new API key, and
every signed-in page personal data; none said ``Cache-Control``, so a browser's
disk cache, or a caching reverse proxy set up as the README's "Caching and
purging" describes for the OGC API, could keep them. Every admin response
without a caching rule of its own is now ``no-store``; static files keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from sdi.registry.models import User
from tests.admin.conftest import People, bearer
from tests.admin.layer_helpers import signed_in


def test_pages_and_api_answers_are_no_store(
    served: str, people: People, token_for: Callable[[User], str]
) -> None:
    browser, csrf = signed_in(served, people.admin)
    shown_once = browser.post(
        f"{served}/account/tokens", data={"name": "laptop", "csrf_token": csrf}
    )
    assert shown_once.status_code == 200 and "secret-value" in shown_once.text
    answers = [
        shown_once,
        browser.get(f"{served}/account", timeout=30),
        browser.get(f"{served}/", timeout=30),
        requests.get(f"{served}/login", timeout=30),
        requests.post(
            f"{served}/api/tokens",
            json={"name": "script"},
            headers=bearer(token_for(people.admin)),
            timeout=30,
        ),
    ]
    for answer in answers:
        assert answer.ok, (answer.url, answer.status_code)
        assert answer.headers.get("Cache-Control") == "no-store", answer.url
    static = requests.get(f"{served}/static/admin.css", timeout=30)
    assert static.status_code == 200
    assert static.headers.get("Cache-Control") != "no-store"
