"""The layer pages' permission matrix: role x action on a landsd layer.

landsd's admin and editor and a platform admin may do everything; td's admin
and editor get 404 for every URL (as for a layer that does not exist), and
anonymous or deactivated users are sent to sign in. A refused attempt changes
nothing: layers, versions, jobs, audit log, publication, tables, spool.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sdi import registry
from sdi.publish.actions import publish_layer
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People, csrf_token
from tests.admin.layer_helpers import (
    ingest,
    run_jobs,
    snapshot,
    spooled,
    upload_page,
)
from tests.ingest import files


@dataclass
class World:
    people: People
    layer: Layer
    job_id: int
    upload: Path


@pytest.fixture
def world(
    app: Flask,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> World:
    """landsd_places (restricted): v1, v2 published, and a finished upload job."""
    make_layer(people.agency, "landsd_places", visibility="restricted")
    make_layer(people.other_agency, "td_stops")
    ingest(conn, settings, "landsd_places", files.make_shapefile_zip(tmp_path / "a"))
    ingest(
        conn, settings, "landsd_places", files.make_shapefile_zip(tmp_path / "b", n=6)
    )
    publish_layer(conn, settings, "landsd_places", 2)
    response = upload_page(
        client_for(people.editor),
        "landsd_places",
        files.make_shapefile_zip(tmp_path / "c", n=4),
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    run_jobs(settings)
    layer = registry.get_layer(conn, "landsd_places")
    return World(people, layer, response.get_json()["job"], tmp_path / "d.zip")


Action = Callable[[FlaskClient, World], TestResponse]


def _post(path: str, data: dict[str, str] | None = None) -> Action:
    def act(client: FlaskClient, world: World) -> TestResponse:
        token = csrf_token(client, "/login")
        return client.post(path, data={**(data or {}), "csrf_token": token})

    return act


def _get(path: str) -> Action:
    return lambda client, world: client.get(path)


def _upload(client: FlaskClient, world: World) -> TestResponse:
    source = files.make_shapefile_zip(world.upload.parent / "up", n=3)
    return upload_page(client, "landsd_places", source)


def _job(suffix: str) -> Action:
    return lambda client, world: client.get(f"/jobs/{world.job_id}{suffix}")


EDIT = {
    "title_en": "Renamed",
    "licence_id": "1",
    "visibility": "restricted",
    "update_frequency": "",
}
# action -> (how, status when allowed)
ACTIONS: dict[str, tuple[Action, int]] = {
    "view": (_get("/layers/landsd_places"), 200),
    "edit-form": (_get("/layers/landsd_places/edit"), 200),
    "edit": (_post("/layers/landsd_places/edit", EDIT), 302),
    "upload": (_upload, 202),
    "review": (_get("/layers/landsd_places/versions/1"), 200),
    "preview": (_get("/layers/landsd_places/versions/1/preview.geojson"), 200),
    "download": (_get("/layers/landsd_places/versions/1/download?format=gpkg"), 200),
    "publish": (_post("/layers/landsd_places/publish", {"version": "3"}), 302),
    "rollback": (_post("/layers/landsd_places/rollback", {"version": "1"}), 302),
    "unpublish": (_post("/layers/landsd_places/unpublish"), 302),
    "job-page": (_job(""), 200),
    "job-status": (_job(".json"), 200),
}


@pytest.mark.parametrize("role", ["editor", "admin", "platform"])
def test_the_owning_agency_and_platform_admins_may(
    role: str,
    world: World,
    client_for: Callable[[User], FlaskClient],
) -> None:
    client = client_for(getattr(world.people, role))
    # In this order every action is valid after the ones before it.
    for action, (act, status) in ACTIONS.items():
        response = act(client, world)
        assert response.status_code == status, (
            action,
            response.get_data(as_text=True)[:2000],
        )


def test_everyone_else_is_refused_and_nothing_changes(
    world: World,
    conn: Conn,
    settings: Settings,
    app: Flask,
    client_for: Callable[[User], FlaskClient],
) -> None:
    others = [
        client_for(world.people.other_editor),
        client_for(world.people.other_admin),
    ]
    outsiders = [app.test_client(), client_for(world.people.inactive)]
    before = snapshot(conn)  # after signing in (which is audited)
    for action, (act, _) in ACTIONS.items():
        for client in others:
            response = act(client, world)
            assert response.status_code == 404, (action, response.status_code)
            body = html.unescape(response.get_data(as_text=True))
            # Nothing but "not found": no title, no version, no job detail.
            assert "Landsd Places" not in body and "places.zip" not in body
        for client in outsiders:
            response = act(client, world)
            assert response.status_code == 302, (action, response.status_code)
            assert "/login" in response.headers["Location"]
    assert snapshot(conn) == before
    assert spooled(settings) == []
