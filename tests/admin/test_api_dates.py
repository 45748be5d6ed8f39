"""Date-times past what PostgreSQL stores are a 400, not a 500 (red team of issue 9).

``9999-12-31T23:59:59-12:00`` is a valid ISO 8601 date-time, but in UTC it is
in the year 10000, past PostgreSQL's timestamps: ``POST /admin/api/keys``
answered 500 (``DataError: timestamp too large``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from sdi.registry.models import User
from tests.admin.conftest import People, bearer

TOO_LATE = "9999-12-31T23:59:59-12:00"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/keys", {"name": "k", "agency": "landsd", "expires_at": TOO_LATE}),
        ("/tokens", {"name": "t", "expires_at": TOO_LATE}),
    ],
    ids=["key", "token"],
)
def test_an_expiry_beyond_year_9999_is_400(
    served: str,
    people: People,
    token_for: Callable[[User], str],
    path: str,
    body: dict[str, str],
) -> None:
    auth = bearer(token_for(people.platform))
    answer = requests.post(f"{served}/api{path}", json=body, headers=auth, timeout=30)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidParameterValue"
    assert "expires_at" in error["message"] and "9999" in error["message"]
    fine = {**body, "expires_at": "9999-12-30T00:00:00Z"}
    answer = requests.post(f"{served}/api{path}", json=fine, headers=auth, timeout=30)
    assert answer.status_code == 201, answer.text
