"""Registry -> pygeoapi resources, generated collection files, config and OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sdi import registry
from sdi.publish import (
    CRS84,
    GENERATED_HEADER,
    PROVIDER_NAME,
    build_config,
    build_openapi,
    build_resources,
    check_config,
    restricted_layers,
    write_collections,
)
from sdi.settings import Settings
from tests.api.layerdata import (
    BUILDING_FIELDS,
    Conn,
    add_version,
    buildings,
    buildings_layer,
    connect,
    create_layer,
)

SLUG = "landsd_buildings"


@pytest.fixture
def db(db_url: str) -> Iterator[Conn]:
    with connect(db_url) as conn:
        yield conn


@pytest.fixture
def published(db: Conn) -> Conn:
    buildings_layer(db, SLUG, 25)
    return db


def test_collection_resource(published: Conn) -> None:
    resource = build_resources(published, 4326)[SLUG]
    assert resource["type"] == "collection"
    assert resource["title"] == {"en": "Buildings", "zh": "建築物"}
    assert resource["description"]["en"].startswith("Building footprints for testing.")
    assert "Owner: Lands Department." in resource["description"]["en"]
    assert "資料擁有者：地政總署。" in resource["description"]["zh"]
    assert (
        "Attribution: Contains data from the CSDI Portal."
        in (resource["description"]["en"])
    )
    assert resource["description"]["zh"] == (
        "測試用建築物資料。資料擁有者：地政總署。"
        "授權條款：空間數據共享平台使用條款及條件。資料來源：空間數據共享平台。版本 1。"
    )
    assert resource["keywords"] == ["buildings", "建築物", "structure", "landsd"]
    licence, author = resource["links"]
    assert licence["rel"] == "license"
    assert licence["href"] == "https://portal.csdi.gov.hk/csdi-webpage/doc/TNC"
    assert licence["type"] == "text/html" and "空間數據共享平台" in licence["title"]
    assert author == {
        "type": "text/html",
        "rel": "author",
        "title": "Lands Department / 地政總署",
        "href": "mailto:gis@landsd.gov.hk",
    }
    bbox = resource["extents"]["spatial"]["bbox"]
    assert resource["extents"]["spatial"]["crs"] == CRS84
    assert 114.14 < bbox[0] < bbox[2] < 114.2 and 22.27 < bbox[1] < bbox[3] < 22.33

    (provider,) = resource["providers"]
    assert provider["type"] == "feature"
    assert provider["name"] == PROVIDER_NAME
    assert provider["id_field"] == "_sdi_fid"
    assert provider["title_field"] == "NAME_EN"
    assert provider["storage_crs"] == CRS84
    assert provider["crs"] == [
        CRS84,
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/2326",
        "http://www.opengis.net/def/crs/EPSG/0/3857",
    ]
    data = provider["data"]
    assert data["table"] == SLUG and data["version"] == 1 and data["srid"] == 4326
    assert list(data["fields"]) == [name for name, _ in BUILDING_FIELDS]
    assert data["fields"]["FLOORS"] == {"type": "integer"}
    assert data["fields"]["OPENED"] == {"type": "string", "format": "date"}
    assert "url" not in str(data) and "postgresql" not in str(resource)


def test_unpublished_layers_are_left_out_and_restricted_ones_named(
    published: Conn,
) -> None:
    create_layer(published, "landsd_draft", title_en="Draft")
    add_version(published, "landsd_draft", buildings(range(3)), publish=False)
    create_layer(published, "landsd_secret", title_en="Secret", visibility="restricted")
    add_version(published, "landsd_secret", buildings(range(3)))
    # Restricted layers are configured; the API hides them from clients
    # without a granted key (tests/api/test_access.py).
    assert sorted(build_resources(published, 4326)) == [SLUG, "landsd_secret"]
    secret = registry.get_layer(published, "landsd_secret")
    assert restricted_layers(published) == {"landsd_secret": secret.id}
    registry.unpublish(published, SLUG)
    registry.unpublish(published, "landsd_secret")
    assert build_resources(published, 4326) == {}
    assert restricted_layers(published) == {}


def test_versions_up_to_the_published_one_are_listed(published: Conn) -> None:
    add_version(published, SLUG, buildings(range(30)))
    add_version(published, SLUG, buildings(range(40)), publish=False)
    versions = build_resources(published, 4326)[SLUG]["providers"][0]["data"][
        "versions"
    ]
    assert [v["number"] for v in versions] == [1, 2]
    assert versions[1]["features"] == 30
    assert versions[1]["fields"] == [name for name, _ in BUILDING_FIELDS]


def test_resource_follows_the_published_version(published: Conn) -> None:
    add_version(published, SLUG, buildings(range(30)))
    assert (
        build_resources(published, 4326)[SLUG]["providers"][0]["data"]["version"] == 2
    )
    registry.publish(published, SLUG, 1)  # rollback
    assert (
        build_resources(published, 4326)[SLUG]["providers"][0]["data"]["version"] == 1
    )


def test_widened_columns_are_declared_with_the_tables_type(published: Conn) -> None:
    # A later upload turned FLOORS into text: v1's rows now come back as strings.
    published.execute(
        'ALTER TABLE sdi_data.landsd_buildings ALTER COLUMN "FLOORS" TYPE text'
    )
    fields = build_resources(published, 4326)[SLUG]["providers"][0]["data"]["fields"]
    assert fields["FLOORS"] == {"type": "string"}


def test_write_collections(published: Conn, settings: Settings) -> None:
    stale = settings.collections_dir / "old_layer.yml"
    foreign = settings.collections_dir / "hand_written.yml"
    settings.collections_dir.mkdir(parents=True)
    stale.write_text(GENERATED_HEADER + "old_layer: {}\n", encoding="utf-8")
    foreign.write_text("mine: {}\n", encoding="utf-8")

    (path,) = write_collections(published, settings)
    assert path == settings.collections_dir / f"{SLUG}.yml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Generated by sdi publish")
    assert "do not edit" in text
    assert "建築物" in text  # UTF-8, not \u escapes
    assert yaml.safe_load(text) == {SLUG: build_resources(published, 4326)[SLUG]}
    assert not stale.exists() and foreign.exists()
    assert not list(settings.collections_dir.glob(".*.tmp"))

    mtime = path.stat().st_mtime_ns
    write_collections(published, settings)
    assert path.stat().st_mtime_ns == mtime  # unchanged content is not rewritten

    registry.unpublish(published, SLUG)
    assert write_collections(published, settings) == []
    assert not path.exists()


def test_config_is_valid_and_filled_from_settings(
    published: Conn, settings: Settings
) -> None:
    settings = settings.with_(base_url="https://sdi.example.hk/", limit_max=500)
    config = build_config(published, settings)
    check_config(config)  # pygeoapi's own JSON schema
    assert config["server"]["url"] == "https://sdi.example.hk"
    assert config["server"]["limits"]["max_items"] == 500
    assert config["server"]["languages"] == ["en-US", "zh-HK"]
    assert list(config["resources"]) == [SLUG, "catalog"]


def test_openapi_document(published: Conn, settings: Settings) -> None:
    config = build_config(published, settings)
    before = yaml.safe_dump(config)
    oas: dict[str, Any] = build_openapi(config)
    assert yaml.safe_dump(config) == before  # the config is not modified
    assert oas["openapi"].startswith("3.0")
    assert f"/collections/{SLUG}/items" in oas["paths"]
    assert f"/collections/{SLUG}/items/{{featureId}}" in oas["paths"]
    parameters = oas["paths"][f"/collections/{SLUG}/items"]["get"]["parameters"]
    names = {p.get("name") for p in parameters}
    assert {"NAME_TC", "FLOORS"} <= names
    assert oas["servers"][0]["url"] == settings.public_url


def test_missing_base_config_is_a_clear_error(
    published: Conn, settings: Settings, tmp_path: Path
) -> None:
    from sdi.publish import ConfigError

    with pytest.raises(ConfigError, match="SDI_CONFIG_DIR"):
        build_config(published, settings.with_(config_dir=tmp_path / "nowhere"))
