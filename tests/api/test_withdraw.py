"""Taking a version down, over real HTTP: the admin JSON API and page withdraw,
the OGC API answers 410 Gone with the reason on every route, rows are purged,
the audit log names who and why, and the next upload is unaffected. Also: a
``next`` link pinned to a version above a roll back is 410, a draft stays 404.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from psycopg import sql

from sdi import registry
from sdi.ingest import ingest_file
from sdi.registry.models import User
from sdi.settings import Settings
from tests.admin.conftest import PASSWORD, People, app, people, served, token_for
from tests.api.conftest import Server
from tests.api.layerdata import Conn

__all__ = ["app", "people", "served", "token_for"]

SLUG = "landsd_lots"
REASON = "Contained owners' names and HKID numbers (PDPO complaint 2026-117)."
SECRET = "HKID A123456(7)"
#: A WebMercatorQuad tile at z10 holding every test lot (around 114.17E 22.30N).
TILE = "10/446/836"


def lots_file(directory: Path, name: str, lots: dict[int, str]) -> Path:
    """A GeoJSON of lots ``{id: name}`` (points near Tsim Sha Tsui), key ``ID``."""
    features = [
        {
            "type": "Feature",
            "properties": {"ID": i, "NAME": label},
            "geometry": {"type": "Point", "coordinates": [114.17 + i / 1000, 22.30]},
        }
        for i, label in sorted(lots.items())
    ]
    path = directory / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


V1 = {i: f"Lot {i}" for i in range(1, 7)}
#: Published in error: lot 3's name carries personal data, lot 7 is new and bad.
V2 = V1 | {3: f"Lot 3, owner Chan Tai Man {SECRET}", 7: f"Lot 7 {SECRET}"}


@pytest.fixture
def lots(db: Conn, people: People, settings: Settings, tmp_path: Path) -> Settings:
    """v1 and v2 of ``SLUG`` (key column ID); v2 published."""
    registry.create_layer(
        db,
        people.agency,
        registry.LayerInput(
            slug=SLUG,
            title_en="Lots",
            licence_id=registry.get_licence(db, "hk-csdi").id,
            key_column="ID",
        ),
    )
    ingest_file(db, settings, lots_file(tmp_path, "v1.geojson", V1), layer=SLUG)
    ingest_file(db, settings, lots_file(tmp_path, "v2.geojson", V2), layer=SLUG)
    registry.publish(db, SLUG, 2)
    return settings


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, timeout=60)


def wait_published(server: Server, version: int) -> None:
    """Until the API serves ``version`` as published (it follows the generation)."""
    deadline = time.monotonic() + 20
    while True:
        response = get(f"{server.url}/collections/{SLUG}/versions")
        if response.ok and response.json()["publishedVersion"] == version:
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def names(response: requests.Response) -> dict[int, str]:
    assert response.status_code == 200, response.text
    return {
        f["properties"]["ID"]: f["properties"]["NAME"]
        for f in response.json()["features"]
    }


def assert_gone(response: requests.Response, *, reason: str | None = REASON) -> None:
    """A 410 as OGC exception JSON, with the reason and a link to the published."""
    assert response.status_code == 410, (response.status_code, response.text)
    body = response.json()
    assert body["code"] == "Gone"
    if reason is not None:
        assert reason.rstrip(".") in body["description"]
    latest = [lk for lk in body["links"] if lk["rel"] == "latest-version"]
    assert latest and "version=" not in latest[0]["href"]
    assert 'rel="latest-version"' in response.headers["Link"]
    assert "immutable" not in response.headers.get("Cache-Control", "")


def table_rows(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        sql.SQL('SELECT "ID", "NAME", _sdi_from, _sdi_to FROM {} ORDER BY 1, 3').format(
            sql.Identifier("sdi_data", SLUG)
        )
    ).fetchall()


def admin_session(base: str, user: User) -> tuple[requests.Session, str]:
    """A signed-in admin session over HTTP, and its CSRF token."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    response = session.post(
        f"{base}/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token[1]},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text
    return session, token[1]


def test_withdrawn_version_is_gone_everywhere_purged_and_audited(
    lots: Settings,
    db: Conn,
    server: Server,
    served: str,
    people: People,
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    base = f"{server.url}/collections/{SLUG}"
    wait_published(server, 2)
    fid = next(
        f["id"]
        for f in get(f"{base}/items", version=2).json()["features"]
        if f["properties"]["ID"] == 7
    )
    assert get(f"{base}/tiles/WebMercatorQuad/{TILE}", version=2).status_code == 200
    assert SECRET in get(f"{base}/items/{fid}").text
    withdraw = f"{served}/api/layers/{SLUG}/versions/2/withdraw"

    # Only platform admins may: the owning agency's admin is refused.
    refused = requests.post(
        withdraw,
        json={"reason": REASON},
        headers={"Authorization": f"Bearer {token_for(people.admin)}"},
        timeout=30,
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "Forbidden"
    empty = requests.post(
        withdraw,
        json={"reason": ""},
        headers={"Authorization": f"Bearer {token_for(people.platform)}"},
        timeout=30,
    )
    assert empty.status_code == 400, empty.text
    assert SECRET in get(f"{base}/items/{fid}").text  # nothing happened yet

    response = requests.post(
        withdraw,
        json={"reason": REASON},
        headers={"Authorization": f"Bearer {token_for(people.platform)}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["version"] == 2 and done["reason"] == REASON
    # lot 3's v2 state and lot 7 deleted; lot 3's v1 state reopened
    assert (done["rows_deleted"], done["rows_reopened"]) == (2, 1)
    assert (done["published_before"], done["published_after"]) == (2, 1)
    assert done["carried_forward"] is None

    wait_published(server, 1)
    for response in (
        get(f"{base}/items", version=2),
        get(f"{base}/items", version=2, f="json", limit=1, offset=1),
        get(f"{base}/items/{fid}", version=2),
        get(f"{base}/changes", to=2),
        get(f"{base}/changes", **{"from": 2, "to": 1}),
        get(f"{base}/tiles/WebMercatorQuad/{TILE}", version=2),
        get(f"{base}/tiles/WebMercatorQuad", version=2),
    ):
        assert_gone(response)
    assert get(f"{base}/items/{fid}").status_code == 404
    assert names(get(f"{base}/items")) == V1
    versions = get(f"{base}/versions").json()
    assert [v["version"] for v in versions["versions"]] == [1]
    assert [w["version"] for w in versions["withdrawnVersions"]] == [2]
    assert versions["withdrawnVersions"][0]["withdrawn"]
    assert REASON not in json.dumps(versions)
    collection = get(base, f="json").json()
    assert [v["version"] for v in collection["versions"]] == [1]
    record = get(f"{server.url}/collections/catalog/items/{SLUG}", f="json")
    assert record.ok and SECRET not in record.text
    assert '"version": 2' not in json.dumps(record.json().get("properties", {}))

    # Purged: no row of v2 is left, the v1 rows are the open ones again.
    assert [(r[0], r[1], r[3]) for r in table_rows(db)] == [
        (i, label, None) for i, label in V1.items()
    ]

    # Downloads (admin exports): 410 with the reason, page and JSON API.
    session, _ = admin_session(served, people.admin)
    page = session.get(f"{served}/layers/{SLUG}/versions/2/download", timeout=30)
    assert page.status_code == 410 and "HKID numbers" in page.text
    assert SECRET not in page.text
    api = requests.get(
        f"{served}/api/layers/{SLUG}/versions/2/download",
        headers={"Authorization": f"Bearer {token_for(people.editor)}"},
        timeout=30,
    )
    assert api.status_code == 410, api.text
    assert api.json()["error"]["code"] == "Gone"
    assert "HKID numbers" in api.json()["error"]["message"]
    listed = requests.get(
        f"{served}/api/layers/{SLUG}/versions",
        headers={"Authorization": f"Bearer {token_for(people.editor)}"},
        timeout=30,
    ).json()
    gone = next(v for v in listed if v["number"] == 2)
    assert gone["withdrawn"]["reason"] == REASON and list(gone["links"]) == ["self"]
    assert next(v for v in listed if v["number"] == 1)["withdrawn"] is None
    detail = session.get(f"{served}/layers/{SLUG}", timeout=30).text
    assert "withdrawn" in detail and "HKID numbers" in detail

    # The audit log keeps who, when and why.
    entry = next(
        e
        for e in registry.audit.list_audit(db, object_type="layer", object_id=SLUG)
        if e.action == "withdraw"
    )
    assert entry.user_id == people.platform.id
    assert entry.actor == people.platform.email
    assert entry.details["reason"] == REASON and entry.details["version"] == 2
    assert entry.at is not None

    # The next upload: number 3, compared with version 1, served correctly.
    v3 = V1 | {5: "Lot 5 (merged)", 8: "Lot 8"}
    version = ingest_file(db, lots, lots_file(tmp_path, "v3.geojson", v3), layer=SLUG)
    assert version.number == 3
    assert version.diff == {"added": 1, "changed": 1, "removed": 0, "unchanged": 5}
    registry.publish(db, SLUG, 3)
    wait_published(server, 3)
    assert names(get(f"{base}/items")) == v3
    changes = get(f"{base}/changes").json()
    assert changes["changes"] == {"added": 1, "changed": 1, "removed": 0}
    assert sorted(f["properties"]["ID"] for f in changes["features"]) == [5, 8]
    assert get(f"{base}/changes", **{"from": 1, "to": 3}).json()["changes"] == {
        "added": 1,
        "changed": 1,
        "removed": 0,
    }
    listed = get(f"{base}/versions").json()["versions"]
    assert [v["version"] for v in listed] == [3, 1]
    assert listed[0]["links"][1]["href"].endswith("/changes?from=1&to=3")
    assert_gone(get(f"{base}/items", version=2))
    assert get(f"{base}/tiles/WebMercatorQuad/{TILE}", version=3).status_code == 200


def test_withdrawing_a_middle_version_on_the_admin_page(
    lots: Settings,
    db: Conn,
    server: Server,
    served: str,
    people: People,
    tmp_path: Path,
) -> None:
    """Features of v2 that v3 still holds stay (and the page says so first)."""
    v3 = V2 | {3: "Lot 3"}  # lot 3 fixed; lot 7 (bad) carried on unchanged
    ingest_file(db, lots, lots_file(tmp_path, "v3.geojson", v3), layer=SLUG)
    registry.publish(db, SLUG, 3)
    session, _ = admin_session(served, people.platform)
    url = f"{served}/layers/{SLUG}/versions/2/withdraw"
    confirm = session.get(url, timeout=30)
    assert confirm.status_code == 200, confirm.text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', confirm.text)
    assert token
    # v2 changed lot 3 and added lot 7; v3 fixed lot 3 but kept lot 7
    assert "1 of the features it added or changed are unchanged in version 3" in (
        confirm.text
    )
    editor, _ = admin_session(served, people.admin)
    assert editor.get(url, timeout=30).status_code == 403

    response = session.post(
        url, data={"reason": REASON, "csrf_token": token[1]}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert "withdrawn" in response.text and "still in version 3" in response.text

    base = f"{server.url}/collections/{SLUG}"
    wait_published(server, 3)
    assert_gone(get(f"{base}/items", version=2))
    assert names(get(f"{base}/items")) == v3  # lot 7 belongs to v3 too: kept
    assert names(get(f"{base}/items", version=1)) == V1
    # The neighbours of the gap compare with each other.
    changes = get(f"{base}/changes").json()
    assert changes["changes"] == {"added": 1, "changed": 0, "removed": 0}
    assert [f["properties"]["ID"] for f in changes["features"]] == [7]
    v3_row = registry.get_version(db, registry.get_layer(db, SLUG).id, 3)
    assert v3_row.diff["against"] == 1
    assert (v3_row.diff["added"], v3_row.diff["changed"]) == (1, 0)
    # only lot 3's v2 state is gone
    assert not any("Chan Tai Man" in str(r[1]) for r in table_rows(db))
    assert sum(SECRET in str(r[1]) for r in table_rows(db)) == 1


def test_next_link_after_a_roll_back_is_gone_and_a_draft_is_not_found(
    lots: Settings, db: Conn, server: Server, tmp_path: Path
) -> None:
    base = f"{server.url}/collections/{SLUG}"
    wait_published(server, 2)
    page = get(f"{base}/items", limit=2).json()
    pinned = next(lk["href"] for lk in page["links"] if lk["rel"] == "next")
    assert "version=2" in pinned
    fid = page["features"][0]["id"]
    ingest_file(db, lots, lots_file(tmp_path, "v3.geojson", V1), layer=SLUG)  # draft
    registry.publish(db, SLUG, 1)  # roll back below 2
    wait_published(server, 1)
    gone = requests.get(pinned, timeout=30)
    assert_gone(gone, reason=None)
    assert "rolled back to version 1" in gone.json()["description"]
    assert_gone(get(f"{base}/items/{fid}", version=2), reason=None)
    assert_gone(get(f"{base}/tiles/WebMercatorQuad/{TILE}", version=2), reason=None)
    # a version never published, above the published one: still 404
    for response in (
        get(f"{base}/items", version=3),
        get(f"{base}/tiles/WebMercatorQuad/{TILE}", version=3),
    ):
        assert response.status_code == 404, response.text
    assert get(f"{base}/items", version="abc").status_code == 400
