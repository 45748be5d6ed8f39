"""Uploads over HTTP: a zip bomb and an unknown CRS are refused at once (issue 9)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People, bearer
from tests.admin.layer_helpers import snapshot, spooled
from tests.ingest import files

MIB = 1024 * 1024


def upload(
    served: str, token: str, slug: str, path: Path, **form: str
) -> requests.Response:
    with path.open("rb") as fh:
        return requests.post(
            f"{served}/api/layers/{slug}/versions",
            headers=bearer(token),
            files={"file": (path.name, fh)},
            data=form,
            timeout=120,
        )


def test_a_zip_bomb_is_refused_when_it_arrives(
    served: str,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "landsd_places")
    bomb = files.make_zip_bomb(tmp_path, size=200 * MIB)
    # Named as anything: the data is judged, not the name.
    disguised = bomb.rename(tmp_path / "roads.geojson")
    token = token_for(people.editor)
    before = snapshot(conn)
    response = upload(served, token, "landsd_places", disguised)
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("roads.geojson was refused as a zip bomb")
    assert "(SDI_MAX_ZIP_RATIO)" in message
    assert snapshot(conn) == before
    assert spooled(settings) == []
    uploads = settings.upload_dir
    assert not uploads.exists() or not [p for p in uploads.rglob("*") if p.is_file()]


def test_an_unknown_crs_is_refused_when_the_upload_arrives(
    served: str,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    # Before: queued, and the job failed later (or the file's own CRS was used).
    make_layer(people.agency, "landsd_places")
    token = token_for(people.editor)
    before = snapshot(conn)
    response = upload(
        served,
        token,
        "landsd_places",
        files.make_geojson(tmp_path),
        crs="EPSG::99999",
    )
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "Unknown or unreadable CRS 'EPSG::99999'" in message
    assert snapshot(conn) == before
    assert spooled(settings) == []
