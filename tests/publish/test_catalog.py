"""The catalogue (OGC API - Records): records built from a real registry, and queried.

Records come from ``sdi.publish.catalog`` over layers made with
``tests.api.layerdata`` (vector) and ``ingest_raster`` (raster); the queries
run through ``sdi.providers.records.CatalogProvider`` as pygeoapi would call it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pygeoapi.provider.base import (
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeofilter.parsers.cql2_text import parse as parse_cql2

from sdi import registry
from sdi.errors import BadInputError
from sdi.ingest.raster import ingest_raster
from sdi.providers.raster import close_datasets
from sdi.providers.records import CatalogProvider
from sdi.publish import build_config, build_openapi, check_config
from sdi.publish.catalog import (
    CATALOG_ID,
    RECORD_PROVIDER,
    catalog_records,
    catalog_resource,
)
from sdi.settings import Settings
from tests.api.layerdata import (
    Conn,
    Feat,
    add_version,
    building,
    buildings,
    create_layer,
    ensure_agency,
)
from tests.rasters.files import write_dem

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
BUILDINGS = "landsd_buildings"
ROADS = "td_roads"
DEM = "landsd_dem"
SECRET = "landsd_secret"
DRAFT = "landsd_draft"


def lantau(n: int) -> list[Feat]:
    """``n`` features on Lantau Island, well west of the buildings."""
    return [
        Feat(f"R{i}", building(i).props, f"POINT({113.90 + i * 0.001} {22.25})")
        for i in range(n)
    ]


def set_created(conn: Conn, slug: str, number: int, when: str) -> None:
    """Backdate a version (uploads in one test happen within a second)."""
    conn.execute(
        "UPDATE sdi.layer_versions SET created_at = %s::timestamptz"
        " WHERE number = %s"
        " AND layer_id = (SELECT id FROM sdi.layers WHERE slug = %s)",
        (when, number, slug),
    )


@pytest.fixture
def layers(conn: Conn, settings: Settings, tmp_path: Path) -> Conn:
    """Published: buildings (v2 of 3), roads (td, CC BY), a DEM, a restricted
    layer; registered but never published: a draft."""
    create_layer(conn, BUILDINGS)
    add_version(conn, BUILDINGS, buildings(range(10)))
    add_version(conn, BUILDINGS, buildings(range(12)))
    add_version(conn, BUILDINGS, buildings(range(15)), publish=False)
    set_created(conn, BUILDINGS, 1, "2024-01-10T08:00:00Z")
    set_created(conn, BUILDINGS, 2, "2024-03-05T08:00:00Z")
    set_created(conn, BUILDINGS, 3, "2024-06-01T08:00:00Z")

    create_layer(
        conn,
        ROADS,
        agency="td",
        licence="cc-by-4.0",
        title_en="Road centrelines",
        title_zh="道路中心線",
    )
    add_version(conn, ROADS, lantau(5))
    set_created(conn, ROADS, 1, "2025-02-01T00:00:00Z")

    registry.create_layer(
        conn,
        ensure_agency(conn, "landsd"),
        registry.LayerInput(
            slug=DEM,
            title_en="Digital elevation model",
            title_zh="數碼高程模型",
            abstract_en="Ground elevation for testing.",
            abstract_zh="測試用地面高程。",
            keywords=["elevation"],
            theme="terrain",
            licence_id=registry.get_licence(conn, "hk-datagovhk").id,
            kind="raster",
        ),
    )
    ingest_raster(conn, settings, write_dem(tmp_path / "dem.tif", 100, 80), layer=DEM)
    registry.publish(conn, DEM, 1)
    set_created(conn, DEM, 1, "2025-05-01T00:00:00Z")

    create_layer(
        conn, SECRET, visibility="restricted", licence="restricted", title_en="Secret"
    )
    add_version(conn, SECRET, buildings(range(3)))
    set_created(conn, SECRET, 1, "2024-02-01T00:00:00Z")
    create_layer(conn, DRAFT, title_en="Draft")
    add_version(conn, DRAFT, buildings(range(3)), publish=False)
    return conn


@pytest.fixture(autouse=True)
def _close_raster_handles() -> Any:
    yield
    close_datasets()


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records}


def test_one_record_per_published_layer(layers: Conn, settings: Settings) -> None:
    records = catalog_records(layers, settings)
    assert [r["id"] for r in records] == [BUILDINGS, DEM, SECRET, ROADS]  # by slug
    assert all(r["type"] == "Feature" for r in records)
    assert {r["properties"]["kind"] for r in records} == {"vector", "raster"}
    # The configuration's own list: only the layers it serves.
    assert [r["id"] for r in catalog_records(layers, settings, [ROADS])] == [ROADS]


def test_vector_record(layers: Conn, settings: Settings) -> None:
    record = by_id(catalog_records(layers, settings))[BUILDINGS]
    props = record["properties"]
    base = settings.public_url
    assert record["conformsTo"] == [
        "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
    ]
    assert props["type"] == "dataset"
    assert (props["title"], props["title_zh"]) == ("Buildings", "建築物")
    assert props["description"] == "Building footprints for testing."
    assert props["description_zh"] == "測試用建築物資料。"
    assert props["keywords"] == ["buildings", "建築物", "structure", "landsd"]
    assert props["themes"] == [
        {"concepts": [{"id": "structure"}], "scheme": "urn:sdi:theme"}
    ]
    assert props["language"]["code"] == "en"
    assert [lang["code"] for lang in props["languages"]] == ["en", "zh-Hant-HK"]
    (contact,) = props["contacts"]
    assert contact["identifier"] == "landsd"
    assert contact["organization"] == "Lands Department"
    assert contact["organization_zh"] == "地政總署"
    assert contact["emails"] == [{"value": "gis@landsd.gov.hk"}]
    assert set(contact["roles"]) == {"owner", "pointOfContact"}
    assert props["agency"] == "landsd" and props["kind"] == "vector"
    assert props["licence"] == "hk-csdi" and props["license"] == "other"
    assert props["licence_title"] == "CSDI Portal Terms and Conditions of Use"
    assert props["rights"] == "Contains data from the CSDI Portal"
    assert props["rights_zh"] == "資料來源：空間數據共享平台"
    assert props["visibility"] == "public"

    # Versions 1..published (the draft v3 is not disclosed); v2 is served.
    assert props["version"] == 2
    assert props["versions"] == [
        {
            "number": 1,
            "created": "2024-01-10T08:00:00Z",
            "features": 10,
            "published": False,
        },
        {
            "number": 2,
            "created": "2024-03-05T08:00:00Z",
            "features": 12,
            "published": True,
        },
    ]
    assert props["updated"] == "2024-03-05T08:00:00Z"
    assert record["time"] == {
        "interval": ["2024-01-10T08:00:00Z", "2024-03-05T08:00:00Z"]
    }
    layer = registry.get_layer(layers, BUILDINGS)
    assert dt.datetime.fromisoformat(props["created"]) == layer.created_at

    # Extent: the published version's, as a polygon and as a bbox.
    extent = registry.get_version(layers, layer.id, 2).extent
    assert extent is not None
    minx, miny, maxx, maxy = extent
    assert props["extent"] == {"spatial": {"bbox": [extent], "crs": CRS84}}
    assert record["geometry"] == {
        "type": "Polygon",
        "coordinates": [
            [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
        ],
    }

    links = {link["rel"]: link for link in record["links"]}
    href = f"{base}/collections/{BUILDINGS}"
    assert links["collection"]["href"] == href
    assert links["items"]["href"] == f"{href}/items"
    assert links["items"]["type"] == "application/geo+json"
    assert links[TILESETS_VECTOR]["href"] == f"{href}/tiles"
    assert links["license"] == {
        "rel": "license",
        "type": "text/html",
        "title": "CSDI Portal Terms and Conditions of Use"
        " / 空間數據共享平台使用條款及條件",
        "href": "https://portal.csdi.gov.hk/csdi-webpage/doc/TNC",
    }
    assert "application/geo+json" in {f["mediaType"] for f in props["formats"]}


def test_raster_and_restricted_records(layers: Conn, settings: Settings) -> None:
    records = by_id(catalog_records(layers, settings))
    dem = records[DEM]
    props = dem["properties"]
    assert props["kind"] == "raster" and props["theme"] == "terrain"
    assert props["title_zh"] == "數碼高程模型"
    assert props["licence"] == "hk-datagovhk"
    assert props["versions"] == [
        {
            "number": 1,
            "created": "2025-05-01T00:00:00Z",
            "cells": 8000,
            "published": True,
        }
    ]
    minx, miny, maxx, maxy = props["extent"]["spatial"]["bbox"][0]
    assert 114.1 < minx < maxx < 114.3 and 22.2 < miny < maxy < 22.4
    assert dem["geometry"]["type"] == "Polygon"
    rels = {link["rel"]: link["href"] for link in dem["links"]}
    href = f"{settings.public_url}/collections/{DEM}"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/coverage"] == f"{href}/coverage"
    assert "items" not in rels and TILESETS_VECTOR not in rels
    assert "image/tiff; application=geotiff" in {
        f["mediaType"] for f in props["formats"]
    }

    secret = records[SECRET]["properties"]
    assert secret["visibility"] == "restricted"
    assert secret["license"] == "other"
    assert "license" not in {link["rel"] for link in records[SECRET]["links"]}

    roads = records[ROADS]["properties"]
    assert roads["license"] == "CC-BY-4.0"
    assert roads["contacts"][0]["organization"] == "Transport Department"
    assert roads["contacts"][0]["organization_zh"] == "運輸署"


def test_the_catalogue_in_the_configuration(layers: Conn, settings: Settings) -> None:
    config = build_config(layers, settings)
    # pygeoapi's own schema accepts it.
    check_config(config)
    catalog = config["resources"][CATALOG_ID]
    assert catalog["type"] == "collection"
    assert catalog["title"]["en"] and catalog["title"]["zh"]
    (provider,) = catalog["providers"]
    assert provider["type"] == "record" and provider["name"] == RECORD_PROVIDER
    # The records are a list at providers[0]["data"]["records"], one per
    # collection.
    records = provider["data"]["records"]
    assert {r["id"] for r in records} == {DEM, BUILDINGS, SECRET, ROADS}
    assert {r["id"] for r in records} <= set(config["resources"])
    # The collection's extent covers the public layers only.
    minx, _, maxx, _ = catalog["extents"]["spatial"]["bbox"]
    assert minx == pytest.approx(113.90) and maxx < 114.3

    oas = build_openapi(config)
    items = oas["paths"][f"/collections/{CATALOG_ID}/items"]["get"]
    names = {p.get("name") for p in items["parameters"]}
    assert {"agency", "kind", "licence"} <= names


def test_no_layer_can_take_the_catalogues_id(conn: Conn) -> None:
    with pytest.raises(BadInputError, match="reserved"):
        create_layer(conn, "catalog")


def test_empty_catalogue(conn: Conn, settings: Settings) -> None:
    resource = catalog_resource(conn, settings)
    assert resource["providers"][0]["data"] == {"records": []}
    provider = CatalogProvider(resource["providers"][0])
    assert provider.query() == {
        "type": "FeatureCollection",
        "features": [],
        "numberMatched": 0,
        "numberReturned": 0,
    }


# --- queries, as pygeoapi calls the provider ---------------------------------


@pytest.fixture
def provider(layers: Conn, settings: Settings) -> CatalogProvider:
    resource = catalog_resource(layers, settings)
    return CatalogProvider(resource["providers"][0])


def ids(result: dict[str, Any]) -> list[str]:
    return [f["id"] for f in result["features"]]


def test_free_text(provider: CatalogProvider) -> None:
    assert ids(provider.query(q="road")) == [ROADS]
    assert ids(provider.query(q="ROAD centre")) == [ROADS]  # all terms, any case
    assert ids(provider.query(q="road elevation")) == []
    assert ids(provider.query(q="道路")) == [ROADS]  # Chinese, no word breaks
    assert ids(provider.query(q="高程")) == [DEM]
    assert ids(provider.query(q="建築物")) == [BUILDINGS, SECRET, ROADS]  # keywords
    assert ids(provider.query(q="road,elevation")) == [DEM, ROADS]  # either


def test_bbox(provider: CatalogProvider) -> None:
    assert ids(provider.query(bbox=[113.8, 22.2, 114.0, 22.3])) == [ROADS]
    assert ids(provider.query(bbox=[0, 0, 1, 1])) == []
    assert ids(provider.query(bbox=[113.8, 22.2, 0, 114.0, 22.3, 9])) == [ROADS]
    assert set(ids(provider.query(bbox=[114.0, 22.2, 114.5, 22.5]))) == {
        DEM,
        BUILDINGS,
        SECRET,
    }


def test_properties_and_datetime(provider: CatalogProvider) -> None:
    assert ids(provider.query(properties=[("agency", "td")])) == [ROADS]
    assert ids(provider.query(properties=[("kind", "raster")])) == [DEM]
    assert ids(provider.query(properties=[("licence", "CC-BY-4.0")])) == [ROADS]
    assert ids(provider.query(properties=[("keywords", "elevation")])) == [DEM]
    assert ids(
        provider.query(properties=[("agency", "landsd"), ("kind", "vector")])
    ) == [BUILDINGS, SECRET]
    assert ids(provider.query(datetime_="2025-01-01/..")) == [DEM, ROADS]
    assert ids(provider.query(datetime_="../2024-03-05")) == [BUILDINGS, SECRET]
    assert ids(provider.query(datetime_="2024-02-01/2024-02-01")) == [SECRET]
    assert ids(provider.query(datetime_="2025-02-01")) == [ROADS]
    assert ids(provider.query(datetime_="2025-02-01T00:00:00Z")) == [ROADS]
    with pytest.raises(ProviderInvalidQueryError, match="datetime"):
        provider.query(datetime_="yesterday")
    with pytest.raises(ProviderInvalidQueryError, match="Unknown queryable"):
        provider.query(properties=[("colour", "red")])


def test_sorting_paging_and_shapes(provider: CatalogProvider) -> None:
    by_title = provider.query(sortby=[{"property": "title", "order": "+"}])
    assert ids(by_title) == [BUILDINGS, DEM, ROADS, SECRET]
    newest = provider.query(sortby=[{"property": "updated", "order": "-"}], limit=2)
    assert ids(newest) == [DEM, ROADS]
    assert (newest["numberMatched"], newest["numberReturned"]) == (4, 2)
    page = provider.query(offset=3, limit=2)
    assert (ids(page), page["numberMatched"], page["numberReturned"]) == (
        [ROADS],
        4,
        1,
    )
    hits = provider.query(resulttype="hits")
    assert hits["features"] == [] and hits["numberMatched"] == 4
    slim = provider.query(select_properties=["title"], skip_geometry=True, limit=1)
    assert slim["features"][0]["properties"] == {"title": "Buildings"}
    assert slim["features"][0]["geometry"] is None


def test_record_by_id_and_copies(provider: CatalogProvider) -> None:
    record = provider.get(ROADS)
    assert record["properties"]["title"] == "Road centrelines"
    record["links"].append({"rel": "self", "href": "x"})  # pygeoapi does this
    assert provider.get(ROADS)["links"] == record["links"][:-1]
    with pytest.raises(ProviderItemNotFoundError):
        provider.get("nope")


def test_cql2_filter(provider: CatalogProvider) -> None:
    def cql(text: str) -> list[str]:
        return ids(provider.query(filterq=parse_cql2(text)))

    assert cql("agency = 'td' OR kind = 'raster'") == [DEM, ROADS]
    assert cql("title LIKE 'Road%'") == [ROADS]
    assert cql("updated > TIMESTAMP('2025-03-01T00:00:00Z')") == [DEM]
    assert cql("BBOX(geometry, 113.8, 22.2, 114.0, 22.3)") == [ROADS]
    west = "POLYGON((113.8 22.2, 114 22.2, 114 22.3, 113.8 22.3, 113.8 22.2))"
    assert cql(f"S_INTERSECTS(geometry, {west})") == [ROADS]
    assert cql("version >= 2") == [BUILDINGS]
    with pytest.raises(ProviderInvalidQueryError, match="colour"):
        cql("colour = 'red'")
    with pytest.raises(ProviderInvalidQueryError, match="filter"):
        cql("updated > 3")
    with pytest.raises(ProviderInvalidQueryError, match="Functions"):
        cql("upper(title) = 'ROAD CENTRELINES'")


def test_queryables(provider: CatalogProvider) -> None:
    fields = provider.fields
    assert {"title", "description", "keywords", "agency", "licence", "theme"} <= set(
        fields
    )
    assert fields["kind"] == {"type": "string"}
    assert fields["updated"] == {"type": "string", "format": "date-time"}
    assert fields["keywords"]["type"] == "array"
    domains, current = provider.get_domains(["kind", "agency"])
    assert domains == {"kind": ["raster", "vector"], "agency": ["landsd", "td"]}
    assert current
