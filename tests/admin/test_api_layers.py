"""The JSON API for layers, versions, uploads and jobs (bearer tokens)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiona
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sdi import registry
from sdi.admin import create_app
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People, bearer
from tests.admin.layer_helpers import ingest, run_jobs, snapshot, spooled
from tests.ingest import files

NEW = {
    "slug": "landsd_places",
    "title_en": "Places",
    "title_zh": "地方",
    "abstract_en": "Sample places.",
    "keywords": ["places", "地方"],
    "theme": "Boundaries",
    "contact": "gis@landsd.gov.hk",
    "update_frequency": "monthly",
    "licence": "hk-csdi",
    "visibility": "public",
    "key_column": "ID",
}


@dataclass
class Api:
    """A client and a token per role."""

    client: FlaskClient
    tokens: dict[str, str]

    def call(
        self,
        role: str | None,
        method: str,
        path: str,
        json: Any = None,
        **kwargs: Any,
    ) -> TestResponse:
        headers = bearer(self.tokens[role]) if role else {}
        return self.client.open(
            "/api" + path, method=method, json=json, headers=headers, **kwargs
        )

    def upload(
        self, role: str | None, slug: str, path: Path, **form: str
    ) -> TestResponse:
        with path.open("rb") as fh:
            return self.call(
                role,
                "POST",
                f"/layers/{slug}/versions",
                data={"file": (fh, path.name), **form},
                content_type="multipart/form-data",
            )


ROLES = ("platform", "admin", "editor", "other_admin", "other_editor", "inactive")


@pytest.fixture
def api(app: Flask, people: People, token_for: Callable[[User], str]) -> Api:
    tokens = {role: token_for(getattr(people, role)) for role in ROLES}
    return Api(app.test_client(), tokens)


def test_register_read_change_and_list_layers(
    api: Api, conn: Conn, people: People
) -> None:
    created = api.call("editor", "POST", "/layers", NEW)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"].endswith("/api/layers/landsd_places")
    assert body["agency"] == "landsd" and body["licence"] == "hk-csdi"
    assert body["keywords"] == ["places", "地方"] and body["key_column"] == "ID"
    assert body["published_version"] is None and body["latest_version"] is None
    assert "id" not in body and "collection" not in body["links"]
    entry = registry.audit.list_audit(conn, object_id="landsd_places")[0]
    assert (entry.action, entry.actor) == ("create", people.editor.email)

    again = api.call("admin", "POST", "/layers", NEW)
    assert again.status_code == 409
    assert "already exists" in again.get_json()["error"]["message"]
    bad = api.call("editor", "POST", "/layers", NEW | {"slug": "Bad Id"})
    assert bad.status_code == 400
    assert "must start with a letter" in bad.get_json()["error"]["message"]
    unknown = api.call("editor", "POST", "/layers", NEW | {"colour": "red"})
    assert unknown.status_code == 400
    assert "Unknown field(s): colour" in unknown.get_json()["error"]["message"]
    elsewhere = api.call(
        "editor", "POST", "/layers", NEW | {"slug": "x", "agency": "td"}
    )
    assert elsewhere.status_code == 404
    no_agency = api.call("platform", "POST", "/layers", NEW | {"slug": "td_stops"})
    assert no_agency.status_code == 400
    assert "Choose the agency" in no_agency.get_json()["error"]["message"]
    for_td = NEW | {"slug": "td_stops", "agency": "td", "key_column": None}
    assert api.call("platform", "POST", "/layers", for_td).status_code == 201

    mine = api.call("editor", "GET", "/layers").get_json()
    assert [layer["slug"] for layer in mine] == ["landsd_places"]
    everyone = api.call("platform", "GET", "/layers").get_json()
    assert [layer["slug"] for layer in everyone] == ["landsd_places", "td_stops"]
    assert api.call("other_editor", "GET", "/layers/landsd_places").status_code == 404
    assert api.call("editor", "GET", "/layers/td_stops").status_code == 404

    changed = api.call(
        "admin",
        "PATCH",
        "/layers/landsd_places",
        {
            "title_en": "Places of HK",
            "keywords": ["a", "a", "b"],
            "licence": "cc-by-4.0",
        },
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["title_en"] == "Places of HK"
    assert changed.get_json()["keywords"] == ["a", "b"]
    assert changed.get_json()["licence"] == "cc-by-4.0"
    assert registry.get_layer(conn, "landsd_places").title_en == "Places of HK"
    assert (
        api.call("editor", "PATCH", "/layers/landsd_places", {"slug": "x"}).status_code
        == 400
    )
    refused = api.call(
        "other_admin", "PATCH", "/layers/landsd_places", {"title_en": "x"}
    )
    assert refused.status_code == 404
    assert registry.get_layer(conn, "landsd_places").title_en == "Places of HK"
    assert api.call(None, "GET", "/layers").status_code == 401
    assert api.call("inactive", "GET", "/layers").status_code == 401


def test_upload_review_publish_download_and_roll_back(
    api: Api,
    conn: Conn,
    settings: Settings,
    people: People,
    tmp_path: Path,
) -> None:
    assert api.call("editor", "POST", "/layers", NEW).status_code == 201
    queued = api.upload(
        "editor", "landsd_places", files.make_shapefile_zip(tmp_path / "a")
    )
    assert queued.status_code == 202, queued.get_json()
    job = queued.get_json()
    assert job["status"] == "queued" and job["file"] == "places.zip"
    assert queued.headers["Location"] == job["url"]
    assert job["url"].endswith(f"/api/jobs/{job['id']}")
    assert (
        api.call("editor", "GET", f"/jobs/{job['id']}").get_json()["status"] == "queued"
    )

    run_jobs(settings)
    done = api.call("admin", "GET", f"/jobs/{job['id']}").get_json()
    assert done["status"] == "succeeded" and done["version"] == 1, done
    assert done["percent"] == 100 and done["error"] is None
    assert spooled(settings) == []

    v1 = api.call("editor", "GET", "/layers/landsd_places/versions/1").get_json()
    assert v1["feature_count"] == 10 and v1["published"] is False
    assert v1["diff"] == {"added": 10, "changed": 0, "removed": 0, "unchanged": 0}
    assert v1["uploaded_by"] == people.editor.email
    assert [f["name"] for f in v1["schema_change"]["added"]] == [
        "ID",
        "NAME_EN",
        "NAME_TC",
        "AREA_M2",
        "SURVEYED",
    ]
    preview = api.call("editor", "GET", "/layers/landsd_places/versions/1/preview")
    assert preview.get_json()["numberReturned"] == 10

    published = api.call("editor", "POST", "/layers/landsd_places/publish")
    assert published.status_code == 200
    assert published.get_json()["published_version"] == 1
    assert "collection" in published.get_json()["links"]

    second = files.make_places_shapefile_zip(
        tmp_path / "b", range(8), renamed={0: "中環站"}
    )
    assert api.upload("admin", "landsd_places", second).status_code == 202
    run_jobs(settings)
    versions = api.call("editor", "GET", "/layers/landsd_places/versions").get_json()
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["diff"] == {
        "added": 0,
        "changed": 1,
        "removed": 2,
        "unchanged": 7,
    }
    assert versions[0]["schema_change"] == {
        "added": [],
        "removed": [],
        "retyped": [],
        "geometry_type": None,
    }
    two = api.call("editor", "POST", "/layers/landsd_places/publish", {"version": 2})
    assert two.get_json()["published_version"] == 2
    back = api.call("editor", "POST", "/layers/landsd_places/rollback", {})
    assert back.status_code == 200 and back.get_json()["published_version"] == 1
    nothing = api.call("editor", "POST", "/layers/landsd_places/rollback")
    assert nothing.status_code == 400
    assert "nothing earlier" in nothing.get_json()["error"]["message"]
    missing = api.call(
        "editor", "POST", "/layers/landsd_places/publish", {"version": 7}
    )
    assert missing.status_code == 404
    wrong = api.call(
        "editor", "POST", "/layers/landsd_places/publish", {"version": "2"}
    )
    assert wrong.status_code == 400

    for fmt, count in (("gpkg", 10), ("geojson", 10)):
        got = api.call(
            "editor", "GET", f"/layers/landsd_places/versions/1/download?format={fmt}"
        )
        assert got.status_code == 200
        path = tmp_path / f"v1.{fmt}"
        path.write_bytes(got.data)
        with fiona.open(path) as src:
            assert len(src) == count
            assert "中環" in {f.properties["NAME_TC"] for f in src}
    got = api.call("editor", "GET", "/layers/landsd_places/versions/2/download")
    assert got.headers["Content-Type"] == "application/geopackage+sqlite3"

    off = api.call("admin", "POST", "/layers/landsd_places/unpublish")
    assert off.get_json()["published_version"] is None
    history = api.call("editor", "GET", "/layers/landsd_places/history").get_json()
    assert [(h["action"], h["version"], h["actor"]) for h in history[:4]] == [
        ("unpublish", None, people.admin.email),
        ("rollback", 1, people.editor.email),
        ("publish", 2, people.editor.email),
        ("ingest", 2, people.admin.email),
    ]
    jobs = api.call("editor", "GET", "/layers/landsd_places/jobs").get_json()
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]


def broken_zip(directory: Path) -> Path:
    whole = files.make_shapefile_zip(directory / "whole").read_bytes()
    path = directory / "roads.zip"
    path.write_bytes(whole[: len(whole) // 2])
    return path


@pytest.mark.parametrize(
    ("make_file", "status", "message"),
    [
        (broken_zip, 400, "roads.zip is not a valid zip archive"),
        (files.make_zip_slip, 400, "member '../evil.txt' points outside the archive"),
        (files.make_zip_symlink, 400, "is a symbolic link"),
        (
            lambda d: files.make_empty_file(d, "empty.geojson"),
            400,
            "is empty (0 bytes)",
        ),
    ],
)
def test_bad_uploads_are_refused_at_once_and_leave_nothing(
    make_file: Callable[[Path], Path],
    status: int,
    message: str,
    api: Api,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "landsd_places")
    before = snapshot(conn)
    response = api.upload("editor", "landsd_places", make_file(tmp_path))
    assert response.status_code == status
    assert message in response.get_json()["error"]["message"]
    assert snapshot(conn) == before
    assert spooled(settings) == []


def test_a_file_without_a_file_field(
    api: Api,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
) -> None:
    make_layer(people.agency, "landsd_places")
    response = api.call(
        "editor",
        "POST",
        "/layers/landsd_places/versions",
        data={"upload": (b"x", "a.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "multipart form field 'file'" in response.get_json()["error"]["message"]
    assert spooled(settings) == []  # the part under another name is not kept


def test_a_file_over_the_limit_is_413(
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    token_for: Callable[[User], str],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "landsd_places")
    small = create_app(settings.with_(max_upload_bytes=64 * 1024))
    api = Api(small.test_client(), {"editor": token_for(people.editor)})
    big = tmp_path / "big.geojson"
    big.write_bytes(b" " * (200 * 1024))
    before = snapshot(conn)
    response = api.upload("editor", "landsd_places", big)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "RequestEntityTooLarge"
    assert (
        "larger than this server accepts (64.0 KiB, SDI_MAX_UPLOAD_BYTES)"
        in error["message"]
    )
    assert snapshot(conn) == before
    assert spooled(settings) == []
    if "sdi_pool" in small.extensions:  # refused before the token check opened it
        small.extensions["sdi_pool"].close()


def test_a_corrupt_record_fails_in_the_job_with_the_reason(
    api: Api,
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "landsd_places")
    queued = api.upload(
        "editor", "landsd_places", files.make_truncated_shapefile_zip(tmp_path)
    )
    assert queued.status_code == 202
    run_jobs(settings)
    job = api.call("editor", "GET", f"/jobs/{queued.get_json()['id']}").get_json()
    assert job["status"] == "failed" and job["version"] is None
    assert job["error"].startswith("Feature 25 of truncated.shp could not be read")
    assert (
        registry.list_versions(conn, registry.get_layer(conn, "landsd_places").id) == []
    )
    assert spooled(settings) == []
    assert conn.execute("SELECT to_regclass('sdi_data.landsd_places')").fetchone() == (
        None,
    )


# -- the permission matrix --------------------------------------------------------


@pytest.fixture
def published(
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    tmp_path: Path,
    api: Api,
) -> dict[str, Any]:
    """landsd_places (restricted) with v1 and v2 (published) and a finished job."""
    make_layer(people.agency, "landsd_places", visibility="restricted")
    make_layer(people.other_agency, "td_stops")
    ingest(conn, settings, "landsd_places", files.make_shapefile_zip(tmp_path / "a"))
    queued = api.upload(
        "editor", "landsd_places", files.make_shapefile_zip(tmp_path / "b", n=7)
    )
    run_jobs(settings)
    api.call("editor", "POST", "/layers/landsd_places/publish", {"version": 2})
    return {"job": queued.get_json()["id"], "dir": tmp_path}


def _actions(world: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], int]]:
    """(name, method, path, keyword arguments, status when allowed), in an order
    where each is valid after the ones before."""
    source = files.make_shapefile_zip(world["dir"] / "c", n=3)
    return [
        ("get", "GET", "/layers/landsd_places", {}, 200),
        ("patch", "PATCH", "/layers/landsd_places", {"json": {"theme": "x"}}, 200),
        ("versions", "GET", "/layers/landsd_places/versions", {}, 200),
        ("version", "GET", "/layers/landsd_places/versions/1", {}, 200),
        ("preview", "GET", "/layers/landsd_places/versions/1/preview", {}, 200),
        ("download", "GET", "/layers/landsd_places/versions/1/download", {}, 200),
        ("history", "GET", "/layers/landsd_places/history", {}, 200),
        ("jobs", "GET", "/layers/landsd_places/jobs", {}, 200),
        ("job", "GET", f"/jobs/{world['job']}", {}, 200),
        ("upload", "POST", "/layers/landsd_places/versions", {"file": source}, 202),
        ("rollback", "POST", "/layers/landsd_places/rollback", {"json": {}}, 200),
        (
            "publish",
            "POST",
            "/layers/landsd_places/publish",
            {"json": {"version": 2}},
            200,
        ),
        ("unpublish", "POST", "/layers/landsd_places/unpublish", {}, 200),
    ]


def _do(
    api: Api, role: str | None, method: str, path: str, kw: dict[str, Any]
) -> TestResponse:
    if "file" in kw:
        return api.upload(role, "landsd_places", kw["file"])
    return api.call(role, method, path, **kw)


@pytest.mark.parametrize("role", ["editor", "admin", "platform"])
def test_the_owning_agency_and_platform_admins_may(
    role: str, api: Api, published: dict[str, Any]
) -> None:
    for name, method, path, kw, status in _actions(published):
        response = _do(api, role, method, path, kw)
        assert response.status_code == status, (name, response.get_json())


def test_everyone_else_is_refused_and_nothing_changes(
    api: Api, conn: Conn, settings: Settings, published: dict[str, Any]
) -> None:
    before = snapshot(conn)
    for name, method, path, kw, _ in _actions(published):
        for role in ("other_admin", "other_editor"):
            response = _do(api, role, method, path, kw)
            assert response.status_code == 404, (name, role, response.status_code)
            message = response.get_json()["error"]["message"]
            assert message in (
                "No layer 'landsd_places'.",
                f"No job {published['job']}.",
            )
        for role in (None, "inactive"):
            response = _do(api, role, method, path, kw)
            assert response.status_code == 401, (name, role, response.status_code)
    after = snapshot(conn)
    assert after == before
    assert spooled(settings) == []


def test_every_endpoint_is_in_the_openapi_document(api: Api) -> None:
    doc = api.call(None, "GET", "/openapi.json").get_json()
    paths = doc["paths"]
    expected = {
        "/layers": {"get", "post"},
        "/layers/{slug}": {"get", "patch"},
        "/layers/{slug}/versions": {"get", "post"},
        "/layers/{slug}/versions/{number}": {"get"},
        "/layers/{slug}/versions/{number}/preview": {"get"},
        "/layers/{slug}/versions/{number}/download": {"get"},
        "/layers/{slug}/publish": {"post"},
        "/layers/{slug}/rollback": {"post"},
        "/layers/{slug}/unpublish": {"post"},
        "/layers/{slug}/history": {"get"},
        "/layers/{slug}/jobs": {"get"},
        "/jobs/{job_id}": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    upload = paths["/layers/{slug}/versions"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"202", "400", "401", "404", "413"} <= set(upload["responses"])
    download = paths["/layers/{slug}/versions/{number}/download"]["get"]
    assert any(p["name"] == "format" for p in download["parameters"])
