"""Raster layers in the generated pygeoapi configuration."""

from __future__ import annotations

from pathlib import Path

import yaml

from sdi import registry
from sdi.ingest.raster import ingest_raster
from sdi.publish import build_config, check_config, write_collections
from sdi.publish.rasters import COVERAGE_PROVIDER, raster_resources
from sdi.settings import Settings
from tests.api.layerdata import Conn
from tests.rasters.conftest import raster_layer
from tests.rasters.files import write_dem

SLUG = "landsd_dem"


def test_published_rasters_only(db: Conn, settings: Settings, tmp_path: Path) -> None:
    raster_layer(db, SLUG)
    raster_layer(db, "landsd_secret", visibility="restricted", licence="restricted")
    dem = write_dem(tmp_path / "dem.tif", 100, 80)
    ingest_raster(db, settings, dem, layer=SLUG)
    second = ingest_raster(db, settings, dem, layer=SLUG)
    ingest_raster(db, settings, dem, layer="landsd_secret")
    assert raster_resources(db, settings) == {}  # nothing published yet

    registry.publish(db, SLUG, 1)
    registry.publish(db, "landsd_secret")
    resources = raster_resources(db, settings)
    # Restricted rasters are configured; the API shows them to granted keys.
    assert sorted(resources) == sorted([SLUG, "landsd_secret"])
    (provider,) = resources[SLUG]["providers"]
    assert provider["type"] == "coverage" and provider["name"] == COVERAGE_PROVIDER
    assert provider["data"] == str((settings.raster_dir / SLUG / "v1.tif").resolve())
    assert provider["options"]["version"] == 1
    assert provider["options"]["max_cells"] == settings.max_coverage_cells
    assert provider["storage_crs"] == "http://www.opengis.net/def/crs/EPSG/0/2326"
    assert resources[SLUG]["extents"]["spatial"]["bbox"] == second.extent

    registry.publish(db, SLUG, 2)  # a new version: a new file
    (provider,) = raster_resources(db, settings)[SLUG]["providers"]
    assert provider["data"].endswith("/v2.tif")

    config = build_config(db, settings)
    check_config(config)  # pygeoapi's own schema accepts the raster collection
    assert config["resources"][SLUG]["providers"] == [provider]
    paths = write_collections(db, settings)
    written = yaml.safe_load((settings.collections_dir / f"{SLUG}.yml").read_text())
    assert settings.collections_dir / f"{SLUG}.yml" in paths
    assert written[SLUG]["providers"][0]["data"] == provider["data"]

    registry.unpublish(db, SLUG)
    assert list(raster_resources(db, settings)) == ["landsd_secret"]


def test_missing_cog_is_left_out(db: Conn, settings: Settings, tmp_path: Path) -> None:
    raster_layer(db, SLUG)
    version = ingest_raster(
        db, settings, write_dem(tmp_path / "d.tif", 50, 50), layer=SLUG
    )
    registry.publish(db, SLUG, version.number)
    (settings.raster_dir / SLUG / "v1.tif").unlink()
    assert raster_resources(db, settings) == {}
