"""The layer pages: register, edit, review, preview, download, publish, roll back."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import fiona
import pytest
from flask.testing import FlaskClient

from sdi import registry
from sdi.registry.models import Layer, User
from sdi.settings import Settings
from tests.admin.conftest import Conn, People
from tests.admin.layer_helpers import ingest, post
from tests.ingest import files

FORM = {
    "slug": "landsd_places",
    "title_en": "Places",
    "title_zh": "地方",
    "abstract_en": "Sample places of Hong Kong.",
    "abstract_zh": "香港地方樣本。",
    "keywords": "places, 地方，districts",
    "theme": "Boundaries",
    "contact": "gis@landsd.gov.hk",
    "update_frequency": "monthly",
    "visibility": "restricted",
    "key_column": "ID",
}


def licence_id(conn: Conn, code: str = "hk-csdi") -> str:
    return str(registry.get_licence(conn, code).id)


def test_an_editor_registers_a_layer(
    conn: Conn, people: People, client_for: Callable[[User], FlaskClient]
) -> None:
    client = client_for(people.editor)
    page = client.get("/new-layer")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "CSDI Portal Terms" in html and 'name="agency"' not in html
    response = post(client, "/new-layer", FORM | {"licence_id": licence_id(conn)})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/layers/landsd_places")
    layer = registry.get_layer(conn, "landsd_places")
    assert layer.agency_id == people.agency.id
    assert (layer.title_zh, layer.abstract_zh) == ("地方", "香港地方樣本。")
    assert layer.keywords == ["places", "地方", "districts"]
    assert (layer.update_frequency, layer.visibility, layer.key_column) == (
        "monthly",
        "restricted",
        "ID",
    )
    entry = registry.audit.list_audit(conn, object_id="landsd_places")[0]
    assert (entry.action, entry.actor, entry.user_id) == (
        "create",
        people.editor.email,
        people.editor.id,
    )
    detail = client.get("/layers/landsd_places").get_data(as_text=True)
    assert "Upload a new version" in detail and "Not published" in detail


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"slug": "Bad Id"}, 400, "must start with a letter"),
        ({"slug": "sdi_x"}, 400, "is reserved"),
        ({"title_en": ""}, 400, "This field is required"),
        ({"visibility": "secret"}, 400, "Not a valid choice"),
    ],
)
def test_registration_says_what_is_wrong(
    change: dict[str, str],
    status: int,
    message: str,
    conn: Conn,
    people: People,
    client_for: Callable[[User], FlaskClient],
) -> None:
    client = client_for(people.editor)
    response = post(
        client, "/new-layer", FORM | {"licence_id": licence_id(conn)} | change
    )
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert registry.list_layers(conn) == []


def test_a_taken_id_is_a_conflict(
    conn: Conn,
    people: People,
    client_for: Callable[[User], FlaskClient],
    make_layer: Callable[..., Layer],
) -> None:
    make_layer(people.other_agency, "landsd_places")
    client = client_for(people.editor)
    response = post(client, "/new-layer", FORM | {"licence_id": licence_id(conn)})
    assert response.status_code == 409
    assert "already exists" in response.get_data(as_text=True)


def test_a_platform_admin_chooses_the_agency(
    conn: Conn, people: People, client_for: Callable[[User], FlaskClient]
) -> None:
    client = client_for(people.platform)
    assert 'name="agency"' in client.get("/new-layer").get_data(as_text=True)
    data = FORM | {"licence_id": licence_id(conn), "slug": "td_stops"}
    refused = post(client, "/new-layer", data)
    assert refused.status_code == 400
    assert "Choose the agency" in refused.get_data(as_text=True)
    assert post(client, "/new-layer", data | {"agency": "td"}).status_code == 302
    assert registry.get_layer(conn, "td_stops").agency_id == people.other_agency.id


def test_editing_metadata(
    conn: Conn,
    settings: Settings,
    people: People,
    client_for: Callable[[User], FlaskClient],
    make_layer: Callable[..., Layer],
    tmp_path: Path,
) -> None:
    layer = make_layer(people.agency, "landsd_places")
    ingest(conn, settings, layer.slug, files.make_shapefile_zip(tmp_path))
    client = client_for(people.admin)
    form = client.get("/layers/landsd_places/edit").get_data(as_text=True)
    assert 'value="Landsd Places"' in form
    data = FORM | {"licence_id": licence_id(conn, "cc-by-4.0"), "title_en": "Places 2"}
    data.pop("slug")
    saved = post(client, "/layers/landsd_places/edit", data)
    assert saved.status_code == 302
    layer = registry.get_layer(conn, "landsd_places")
    assert layer.title_en == "Places 2" and layer.key_column == "ID"
    assert layer.licence_id == int(licence_id(conn, "cc-by-4.0"))
    entry = registry.audit.list_audit(conn, object_id="landsd_places")[0]
    assert entry.action == "update" and entry.actor == people.admin.email
    assert "title_en" in entry.details
    form = client.get("/layers/landsd_places/edit").get_data(as_text=True)
    assert 'value="places, 地方, districts"' in form and 'value="Places 2"' in form
    assert '<option selected value="monthly">' in form

    # The key column must be an attribute of the latest version.
    refused = post(client, "/layers/landsd_places/edit", data | {"key_column": "NOPE"})
    assert refused.status_code == 400
    assert "'NOPE' is not an attribute of version 1" in html.unescape(
        refused.get_data(as_text=True)
    )
    assert registry.get_layer(conn, "landsd_places").key_column == "ID"


@pytest.fixture
def two_versions(
    conn: Conn,
    settings: Settings,
    people: People,
    make_layer: Callable[..., Layer],
    tmp_path: Path,
) -> Layer:
    """landsd_places: v1 = 10 places (key ID), v2 = 8 of them, one renamed."""
    make_layer(people.agency, "landsd_places")
    conn.execute("UPDATE sdi.layers SET key_column = 'ID'")
    ingest(
        conn,
        settings,
        "landsd_places",
        files.make_shapefile_zip(tmp_path / "v1"),
        people.editor,
    )
    ingest(
        conn,
        settings,
        "landsd_places",
        files.make_places_shapefile_zip(
            tmp_path / "v2", range(8), renamed={2: "鰂魚涌東"}
        ),
        people.admin,
    )
    return registry.get_layer(conn, "landsd_places")


def test_reviewing_a_version(
    two_versions: Layer, people: People, client_for: Callable[[User], FlaskClient]
) -> None:
    client = client_for(people.editor)
    page = client.get("/layers/landsd_places/versions/2")
    assert page.status_code == 200
    html = page.get_data(as_text=True)

    def stat(name: str) -> str:
        match = re.search(rf'id="stat-{name}">([^<]+)<', html)
        assert match, name
        return match[1]

    assert (stat("features"), stat("added"), stat("changed"), stat("removed")) == (
        "8",
        "0",
        "1",
        "2",
    )
    assert stat("repaired") == "0"
    assert "Same attributes as version 1" in html
    assert people.admin.email in html  # who uploaded it
    assert "Publish this version" in html
    assert 'src="/static/preview.js"' in html
    assert "/static/vendor/maplibre-gl/maplibre-gl.css" in html
    # Scripts and styles are our own (the browser test records every request).
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"(https?:)?//", html)

    first = client.get("/layers/landsd_places/versions/1").get_data(as_text=True)
    assert first.count('class="mark added"') == 0  # a first version adds nothing

    preview = client.get("/layers/landsd_places/versions/2/preview.geojson")
    assert preview.status_code == 200
    assert preview.mimetype == "application/geo+json"
    body = preview.get_json()
    assert body["numberMatched"] == 8 == len(body["features"])
    names = {f["properties"]["NAME_TC"] for f in body["features"]}
    assert "鰂魚涌東" in names and "鰂魚涌" not in names
    assert client.get("/layers/landsd_places/versions/9").status_code == 404


def test_schema_changes_are_marked(
    conn: Conn,
    settings: Settings,
    people: People,
    client_for: Callable[[User], FlaskClient],
    make_layer: Callable[..., Layer],
    tmp_path: Path,
) -> None:
    make_layer(people.agency, "landsd_places")
    ingest(conn, settings, "landsd_places", files.make_shapefile_zip(tmp_path))
    features = [
        {
            "type": "Feature",
            "properties": {"ID": f"P{i}", "NAME_EN": "x", "OPENED": "2021-01-01"},
            "geometry": {"type": "Point", "coordinates": [114.1 + i / 100, 22.3]},
        }
        for i in range(3)
    ]
    v2 = tmp_path / "v2.geojson"
    v2.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    ingest(conn, settings, "landsd_places", v2)
    html = client_for(people.editor).get("/layers/landsd_places/versions/2")
    text = html.get_data(as_text=True)
    cell = r"</td>\s*<td[^>]*>"
    assert re.search(rf"OPENED</code>{cell}date{cell}<span class=\"mark added\"", text)
    assert re.search(
        rf"ID</code>{cell}text{cell}<span class=\"mark retyped\">was bigint", text
    )
    assert text.count('class="mark removed"') == 3  # NAME_TC, AREA_M2, SURVEYED


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_downloading_any_version(
    fmt: str,
    two_versions: Layer,
    people: People,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    client = client_for(people.editor)
    for number, count in ((1, 10), (2, 8)):
        response = client.get(
            f"/layers/landsd_places/versions/{number}/download?format={fmt}"
        )
        assert response.status_code == 200
        disposition = response.headers["Content-Disposition"]
        assert f"landsd_places_v{number}.{fmt}" in disposition
        assert response.content_length == len(response.data)
        path = tmp_path / f"down{number}.{fmt}"
        path.write_bytes(response.data)
        with fiona.open(path) as src:
            assert len(src) == count
            assert src.crs.to_string() in ("EPSG:4326", "OGC:CRS84")
            names = {f.properties["NAME_TC"] for f in src}
        assert "鴨脷洲" in names
    bad = client.get("/layers/landsd_places/versions/1/download?format=shp")
    assert bad.status_code == 400
    assert "choose one of gpkg, geojson" in bad.get_data(as_text=True)
    assert not any(
        (
            Path(client.application.extensions["sdi_settings"].var_dir) / "exports"
        ).iterdir()
    )


def test_publish_roll_back_and_unpublish(
    conn: Conn,
    settings: Settings,
    two_versions: Layer,
    people: People,
    client_for: Callable[[User], FlaskClient],
) -> None:
    client = client_for(people.editor)
    done = post(client, "/layers/landsd_places/publish", {"version": "2"})
    assert done.status_code == 302
    assert registry.get_layer(conn, "landsd_places").published_version == 2
    yml = settings.collections_dir / "landsd_places.yml"
    assert yml.exists()
    page = client.get("/layers/landsd_places").get_data(as_text=True)
    assert "Published: version 2" in page and "Roll back to v1" in page
    assert "Version 2 of landsd_places is published" in page

    assert post(client, "/layers/landsd_places/rollback", {}).status_code == 302
    assert registry.get_layer(conn, "landsd_places").published_version == 1
    refused = post(client, "/layers/landsd_places/rollback", {})
    assert refused.status_code == 400
    assert "nothing earlier to roll back to" in refused.get_data(as_text=True)
    bad = post(client, "/layers/landsd_places/publish", {"version": "x"})
    assert bad.status_code == 400

    assert post(client, "/layers/landsd_places/unpublish").status_code == 302
    assert registry.get_layer(conn, "landsd_places").published_version is None
    assert not yml.exists()

    history = client.get("/layers/landsd_places").get_data(as_text=True)
    section = history[history.index('id="history"') :]
    rows = re.findall(
        r"<tr>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>([^<]+)",
        section,
    )
    whats = [(who, what.strip()) for _, who, what in rows]
    assert whats[:4] == [
        (people.editor.email, "unpublish (was 1)"),
        (people.editor.email, "rollback version 1 (was 2)"),
        (people.editor.email, "publish version 2"),
        (people.admin.email, "ingest version 2 · places.zip"),
    ]


def test_the_index_lists_only_what_the_user_manages(
    people: People,
    client_for: Callable[[User], FlaskClient],
    make_layer: Callable[..., Layer],
) -> None:
    make_layer(people.agency, "landsd_places")
    make_layer(people.other_agency, "td_stops", visibility="restricted")
    own = client_for(people.editor).get("/").get_data(as_text=True)
    assert "landsd_places" in own and "td_stops" not in own
    other = client_for(people.other_editor).get("/").get_data(as_text=True)
    assert "td_stops" in other and "landsd_places" not in other
    everyone = client_for(people.platform).get("/").get_data(as_text=True)
    assert "td_stops" in everyone and "landsd_places" in everyone


def test_pages_need_signing_in(client: FlaskClient, people: People) -> None:
    for path in ("/", "/new-layer", "/layers/x", "/jobs/1", "/jobs/1.json"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
