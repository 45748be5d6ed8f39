"""The catalogue over real HTTP: OGC API - Records at ``/collections/catalog``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sdi import registry
from sdi.ingest.raster import ingest_raster
from sdi.providers.raster import close_datasets
from sdi.registry import apikeys
from tests.api.conftest import Server
from tests.api.layerdata import (
    Conn,
    Feat,
    add_version,
    building,
    buildings,
    buildings_layer,
    create_layer,
    ensure_agency,
)
from tests.rasters.files import write_dem

CATALOG = "catalog"
BUILDINGS = "landsd_buildings"
ROADS = "td_roads"
DEM = "landsd_dem"
SECRET = "landsd_secret"
DRAFT = "landsd_draft"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
RECORDS_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/core"


def get(url: str, key: str | None = None, **params: Any) -> requests.Response:
    headers = {"X-API-Key": key} if key else {}
    return requests.get(url, params=params, headers=headers, timeout=30)


def records(server: Server, **params: Any) -> dict[str, Any]:
    response = get(f"{server.url}/collections/{CATALOG}/items", **params)
    assert response.status_code == 200, response.text
    assert "json" in response.headers["Content-Type"]
    body: dict[str, Any] = response.json()
    return body


def ids(server: Server, **params: Any) -> list[str]:
    return [r["id"] for r in records(server, limit=100, **params)["features"]]


def assert_ogc_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["description"]


def set_created(conn: Conn, slug: str, when: str) -> None:
    conn.execute(
        "UPDATE sdi.layer_versions SET created_at = %s::timestamptz"
        " WHERE layer_id = (SELECT id FROM sdi.layers WHERE slug = %s)",
        (when, slug),
    )


@pytest.fixture
def catalogue(db: Conn, server: Server, tmp_path: Path) -> Iterator[Conn]:
    """Published: buildings (landsd), roads (td, CC BY, on Lantau), a DEM (raster)
    and a restricted layer; registered, never published: a draft."""
    buildings_layer(db, BUILDINGS, 25)
    create_layer(
        db,
        ROADS,
        agency="td",
        licence="cc-by-4.0",
        title_en="Road centrelines",
        title_zh="道路中心線",
    )
    lantau = [
        Feat(f"R{i}", building(i).props, f"POINT({113.90 + i * 0.001} 22.25)")
        for i in range(5)
    ]
    add_version(db, ROADS, lantau)
    registry.create_layer(
        db,
        ensure_agency(db, "landsd"),
        registry.LayerInput(
            slug=DEM,
            title_en="Digital elevation model",
            title_zh="數碼高程模型",
            abstract_en="Ground elevation for testing.",
            abstract_zh="測試用地面高程。",
            keywords=["elevation"],
            theme="terrain",
            licence_id=registry.get_licence(db, "hk-datagovhk").id,
            kind="raster",
        ),
    )
    dem = write_dem(tmp_path / "dem.tif", 100, 80)
    ingest_raster(db, server.settings, dem, layer=DEM)
    registry.publish(db, DEM, 1)
    create_layer(db, SECRET, visibility="restricted", title_en="Secret")
    add_version(db, SECRET, buildings(range(3)))
    create_layer(db, DRAFT, title_en="Draft")
    add_version(db, DRAFT, buildings(range(3)), publish=False)
    set_created(db, BUILDINGS, "2024-03-05T08:00:00Z")
    set_created(db, ROADS, "2025-02-01T00:00:00Z")
    set_created(db, DEM, "2025-05-01T00:00:00Z")
    with db.transaction():
        registry.bump_generation(db)  # the dates above are part of the records
    yield db
    close_datasets()


def test_the_catalogue_is_a_record_collection(catalogue: Conn, server: Server) -> None:
    listed = get(f"{server.url}/collections", f="json").json()["collections"]
    (catalog,) = [c for c in listed if c["id"] == CATALOG]
    assert catalog["itemType"] == "record"
    assert catalog["title"] == "Catalogue of published layers"
    zh = get(f"{server.url}/collections/{CATALOG}", lang="zh-HK").json()
    assert zh["title"] == "已發佈圖層目錄" and zh["itemType"] == "record"
    assert any(link["rel"].endswith("/ogc-catalog") for link in zh["links"])
    conformance = get(f"{server.url}/conformance", f="json").json()["conformsTo"]
    assert RECORDS_CORE in conformance
    queryables = get(f"{server.url}/collections/{CATALOG}/queryables").json()
    assert {"agency", "kind", "licence", "theme", "keywords", "updated"} <= set(
        queryables["properties"]
    )


def test_one_record_per_published_public_layer(catalogue: Conn, server: Server) -> None:
    body = records(server, limit=100)
    assert [r["id"] for r in body["features"]] == [BUILDINGS, DEM, ROADS]
    assert (body["numberMatched"], body["numberReturned"]) == (3, 3)
    # The restricted layer's record is there for a key granted for it.
    agency = registry.get_agency(catalogue, "landsd")
    admin = registry.create_user(
        catalogue, "keys@landsd.test", "a long enough password", "agency_admin",
        agency=agency,
    )  # fmt: skip
    _, key = apikeys.create_key(catalogue, admin, agency.id, "vendor", [SECRET])
    granted = get(f"{server.url}/collections/{CATALOG}/items", key, limit=100)
    assert granted.status_code == 200, granted.text
    assert [r["id"] for r in granted.json()["features"]] == [
        BUILDINGS,
        DEM,
        SECRET,
        ROADS,
    ]


def test_record_content(catalogue: Conn, server: Server) -> None:
    response = get(f"{server.url}/collections/{CATALOG}/items/{ROADS}")
    assert response.status_code == 200, response.text
    record = response.json()
    props = record["properties"]
    assert record["id"] == ROADS and record["type"] == "Feature"
    assert (props["title"], props["title_zh"]) == ("Road centrelines", "道路中心線")
    assert props["description"] and props["description_zh"]
    assert props["type"] == "dataset" and props["kind"] == "vector"
    (contact,) = props["contacts"]
    assert contact["organization"] == "Transport Department"
    assert contact["organization_zh"] == "運輸署"
    assert contact["emails"] == [{"value": "gis@td.gov.hk"}]
    assert "owner" in contact["roles"]
    assert props["license"] == "CC-BY-4.0" and props["licence"] == "cc-by-4.0"
    assert props["versions"] == [
        {
            "number": 1,
            "created": "2025-02-01T00:00:00Z",
            "features": 5,
            "published": True,
        }
    ]
    assert props["updated"] == "2025-02-01T00:00:00Z"
    minx, miny, maxx, maxy = props["extent"]["spatial"]["bbox"][0]
    assert (minx, miny, maxy) == (113.90, 22.25, 22.25)
    assert maxx == pytest.approx(113.904)
    assert record["geometry"]["type"] == "Polygon"

    links = {link["rel"]: link["href"] for link in record["links"]}
    assert links["license"] == "https://creativecommons.org/licenses/by/4.0/"
    base = f"{server.url}/collections/{ROADS}"
    assert links[f"{OGC_REL}/tilesets-vector"] == f"{base}/tiles"  # being built
    # pygeoapi adds the record's own links (self, the catalogue) to ours.
    assert any(link["href"].startswith(base) for link in record["links"])
    for rel in ("items", f"{OGC_REL}/queryables"):
        assert get(links[rel]).status_code == 200, rel
    layer_links = [
        link
        for link in record["links"]
        if link["rel"] == "collection" and link["href"] == base
    ]
    assert len(layer_links) == 1
    assert get(base).json()["id"] == ROADS


def test_raster_record_links_resolve(catalogue: Conn, server: Server) -> None:
    record = get(f"{server.url}/collections/{CATALOG}/items/{DEM}").json()
    assert record["properties"]["kind"] == "raster"
    assert record["properties"]["versions"][0]["cells"] == 8000
    served = [
        link
        for link in record["links"]
        if link["href"].startswith(f"{server.url}/collections/{DEM}")
    ]
    assert {link["rel"] for link in served} >= {
        "collection",
        f"{OGC_REL}/coverage",
        f"{OGC_REL}/tilesets-map",
    }
    for link in served:
        response = get(link["href"])
        assert response.status_code == 200, (link, response.text[:300])


def test_free_text(catalogue: Conn, server: Server) -> None:
    assert ids(server, q="road") == [ROADS]
    assert ids(server, q="Road CENTRE") == [ROADS]
    assert ids(server, q="road elevation") == []
    assert ids(server, q="道路") == [ROADS]
    assert ids(server, q="高程") == [DEM]
    assert ids(server, q="elevation,road") == [DEM, ROADS]


def test_bbox_properties_datetime_and_sorting(catalogue: Conn, server: Server) -> None:
    assert ids(server, bbox="113.8,22.2,114.0,22.3") == [ROADS]
    assert ids(server, bbox="114.0,22.2,114.5,22.5") == [BUILDINGS, DEM]
    assert ids(server, bbox="0,0,1,1") == []
    assert ids(server, agency="td") == [ROADS]
    assert ids(server, agency="landsd", kind="vector") == [BUILDINGS]
    assert ids(server, kind="raster") == [DEM]
    assert ids(server, licence="cc-by-4.0") == [ROADS]
    assert ids(server, keywords="elevation") == [DEM]
    assert ids(server, theme="terrain") == [DEM]
    assert ids(server, datetime="2025-01-01T00:00:00Z/..") == [DEM, ROADS]
    assert ids(server, datetime="../2024-12-31") == [BUILDINGS]
    assert ids(server, sortby="-updated") == [DEM, ROADS, BUILDINGS]
    assert ids(server, sortby="title") == [BUILDINGS, DEM, ROADS]
    assert ids(server, filter="agency = 'td' OR kind = 'raster'") == [DEM, ROADS]


def test_paging(catalogue: Conn, server: Server) -> None:
    first = records(server, limit=2)
    assert [r["id"] for r in first["features"]] == [BUILDINGS, DEM]
    assert (first["numberMatched"], first["numberReturned"]) == (3, 2)
    (next_link,) = [link for link in first["links"] if link["rel"] == "next"]
    assert "offset=2" in next_link["href"]
    second = requests.get(next_link["href"], timeout=30).json()
    assert [r["id"] for r in second["features"]] == [ROADS]
    assert not [link for link in second["links"] if link["rel"] == "next"]
    assert [link for link in second["links"] if link["rel"] == "prev"]


def test_errors(catalogue: Conn, server: Server) -> None:
    items = f"{server.url}/collections/{CATALOG}/items"
    assert_ogc_error(get(f"{items}/nope"), 404, "NotFound")
    assert_ogc_error(get(f"{items}/{DRAFT}"), 404, "NotFound")
    assert_ogc_error(get(items, bbox="1,2,3"), 400, "InvalidParameterValue")
    assert_ogc_error(get(items, bbox="a,b,c,d"), 400, "InvalidParameterValue")
    assert_ogc_error(get(items, datetime="yesterday"), 400, "InvalidQuery")
    assert_ogc_error(get(items, sortby="colour"), 400, "InvalidParameterValue")
    assert_ogc_error(get(items, filter="colour = 'red'"), 400, "InvalidQuery")


@pytest.mark.parametrize(
    "path",
    [
        f"/collections/{CATALOG}",
        f"/collections/{CATALOG}/items",
        f"/collections/{CATALOG}/items/{BUILDINGS}",
        f"/collections/{CATALOG}/queryables",
    ],
)
def test_html_pages(catalogue: Conn, server: Server, path: str) -> None:
    for lang in ("en-US", "zh-HK"):
        response = get(server.url + path, f="html", lang=lang)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/html")
    page = get(f"{server.url}/collections/{CATALOG}/items", f="html").text
    assert "Road centrelines" in page


def test_a_new_publication_reaches_the_catalogue(
    catalogue: Conn, server: Server
) -> None:
    assert "landsd_new" not in ids(server)
    create_layer(catalogue, "landsd_new", title_en="New layer", title_zh="新圖層")
    add_version(catalogue, "landsd_new", buildings(range(2)))
    started = time.monotonic()
    while "landsd_new" not in ids(server, q="新圖層"):
        assert time.monotonic() - started < 3, "not in the catalogue within 3 s"
        time.sleep(0.1)
