"""GeoTIFF uploads become COG versions of raster layers; bad ones leave nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil

from sdi import registry
from sdi.errors import IngestError, UnsupportedFormatError
from sdi.ingest.raster import (
    ingest_raster,
    is_raster_file,
    raster_path,
    thumbnail_png,
)
from sdi.settings import Settings
from tests.api.layerdata import Conn, ensure_agency
from tests.rasters.conftest import raster_layer
from tests.rasters.files import (
    DEM_NODATA,
    DEM_ORIGIN,
    DEM_RES,
    dem_values,
    rgb_values,
    truncated,
    write_dem,
    write_rgb,
    zip_of,
)

SLUG = "landsd_dem"


def _files(settings: Settings) -> list[Path]:
    """Everything under the raster directory (files and folders)."""
    root = settings.raster_dir
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() or not any(p.iterdir()))


def _versions(conn: Conn, slug: str) -> list[registry.Version]:
    return registry.list_versions(conn, registry.get_layer(conn, slug).id)


def test_dem_becomes_a_cog_version(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    raster_layer(db, SLUG)
    source = write_dem(tmp_path / "dem.tif")
    version = ingest_raster(db, settings, source, layer=SLUG)

    assert version.number == 1
    assert version.geometry_type == "Raster"
    assert version.source_crs == "EPSG:2326"
    assert version.source_format == "GTiff"
    assert version.feature_count == 1200 * 900  # cells
    grid = version.schema["raster"]
    assert grid["file"] == f"{SLUG}/v1.tif"
    assert (grid["width"], grid["height"], grid["count"]) == (1200, 900, 1)
    assert grid["crs"] == "EPSG:2326"
    assert grid["crs_uri"] == "http://www.opengis.net/def/crs/EPSG/0/2326"
    assert grid["resolution"] == [DEM_RES, DEM_RES]
    left, top = DEM_ORIGIN
    assert grid["bounds"] == [left, top - 900 * DEM_RES, left + 1200 * DEM_RES, top]
    west, south, east, north = grid["bounds_wgs84"]
    assert 114.0 < west < east < 114.3 and 22.2 < south < north < 22.5
    assert version.extent == grid["bounds_wgs84"]
    (band,) = grid["bands"]
    assert band["name"] == "elevation" and band["unit"] == "metre"
    assert band["dtype"] == "float32" and band["nodata"] == DEM_NODATA
    values = dem_values(1200, 900)
    valid = values[values != DEM_NODATA].astype(np.float64)
    stats = band["stats"]
    assert stats["min"] == pytest.approx(valid.min())
    assert stats["max"] == pytest.approx(valid.max())
    assert stats["mean"] == pytest.approx(valid.mean(), rel=1e-6)
    assert stats["stddev"] == pytest.approx(valid.std(), rel=1e-4)
    assert version.schema["fields"] == [{"name": "elevation", "type": "float32"}]

    cog = raster_path(settings, version)
    assert cog == settings.raster_dir / SLUG / "v1.tif"
    assert _files(settings) == [cog]  # no temporary files left
    with rasterio.open(cog) as ds:
        assert ds.crs.to_epsg() == 2326
        assert ds.block_shapes[0] == (512, 512)
        assert ds.overviews(1) == grid["overviews"] == [2, 4]
        assert ds.compression.name == "deflate"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert np.array_equal(ds.read(1), values)  # lossless
    entry = registry.audit.list_audit(db, object_type="layer", object_id=SLUG)[0]
    assert entry.action == "ingest" and entry.details["version"] == 1


def test_second_version_and_identical_upload(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    raster_layer(db, SLUG)
    source = write_dem(tmp_path / "dem.tif", 300, 200)
    ingest_raster(db, settings, source, layer=SLUG)
    second = ingest_raster(db, settings, source, layer=SLUG, note="again")
    assert second.number == 2
    assert second.diff == {"previous": 1, "same_file_as_previous": True}
    assert [p.name for p in _files(settings)] == ["v1.tif", "v2.tif"]


def test_rgb_image_in_4326(db: Conn, settings: Settings, tmp_path: Path) -> None:
    raster_layer(db, "landsd_ortho")
    version = ingest_raster(
        db, settings, write_rgb(tmp_path / "ortho.tif"), layer="landsd_ortho"
    )
    grid = version.schema["raster"]
    assert version.source_crs == "EPSG:4326"
    assert [b["dtype"] for b in grid["bands"]] == ["uint8"] * 3
    assert [b["colorinterp"] for b in grid["bands"]] == ["red", "green", "blue"]
    assert [b["nodata"] for b in grid["bands"]] == [None] * 3
    assert [b["name"] for b in grid["bands"]] == ["band1", "band2", "band3"]
    assert grid["bounds_wgs84"] == pytest.approx([114.10, 22.25, 114.30, 22.40])
    with rasterio.open(raster_path(settings, version)) as ds:
        assert np.array_equal(ds.read(), rgb_values(400, 300))


def test_zipped_geotiff(db: Conn, settings: Settings, tmp_path: Path) -> None:
    raster_layer(db, SLUG)
    archive = zip_of(write_dem(tmp_path / "dem.tif", 200, 100), tmp_path / "dem.zip")
    assert is_raster_file(archive) and is_raster_file(tmp_path / "dem.tif")
    mixed = tmp_path / "roads.zip"  # a Shapefile with a picture is vector data
    with zipfile.ZipFile(mixed, "w") as zf:
        zf.write(tmp_path / "dem.tif", "roads/photo.tif")
        zf.writestr("roads/roads.shp", b"\x00\x00\x27\x0a")
    assert not is_raster_file(mixed)
    assert not is_raster_file(tmp_path / "missing.tif")
    version = ingest_raster(db, settings, archive, layer=SLUG)
    assert version.source_format == "GTiff (zip)"
    assert version.source_layer == "data/dem.tif"
    assert version.source_filename == "dem.zip"


def test_tiff_without_crs_needs_one(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    raster_layer(db, SLUG)
    source = write_dem(tmp_path / "nocrs.tif", 200, 100, crs=None)
    before = source.read_bytes()
    with pytest.raises(IngestError, match=r"no coordinate reference system.*--crs"):
        ingest_raster(db, settings, source, layer=SLUG)
    assert _versions(db, SLUG) == [] and _files(settings) == []

    version = ingest_raster(db, settings, source, layer=SLUG, crs="EPSG:2326")
    assert version.source_crs == "EPSG:2326"
    with rasterio.open(raster_path(settings, version)) as ds:
        assert ds.crs.to_epsg() == 2326
    assert source.read_bytes() == before  # the upload itself is not modified


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize(
    "kind", ["text", "truncated", "truncated-cog", "png", "no-georeferencing"]
)
def test_bad_files_leave_nothing(
    db: Conn, settings: Settings, tmp_path: Path, kind: str
) -> None:
    raster_layer(db, SLUG)
    if kind == "text":
        bad = tmp_path / "notes.tif"
        bad.write_text("this is not a raster\n")
        expected: tuple[type[Exception], str] = (IngestError, "not a raster")
    elif kind == "truncated":  # directory at the end: cannot even be opened
        full = write_dem(tmp_path / "full.tif", 1000, 800, tiled=True)
        bad = truncated(full, tmp_path / "cut.tif")
        expected = (IngestError, "damaged or truncated")
    elif kind == "truncated-cog":  # directory first: fails while reading cells
        full = write_dem(tmp_path / "full.tif", 1000, 800, tiled=True)
        cog = tmp_path / "full-cog.tif"
        rasterio.shutil.copy(full, cog, driver="COG")
        bad = truncated(cog, tmp_path / "cut.tif")
        expected = (IngestError, "damaged or truncated")
    elif kind == "png":
        bad = tmp_path / "picture.png"
        with rasterio.open(
            bad, "w", driver="PNG", width=8, height=8, count=1, dtype="uint8"
        ) as dst:
            dst.write(np.zeros((1, 8, 8), dtype=np.uint8))
        expected = (UnsupportedFormatError, "sdi takes GeoTIFF")
    else:
        bad = tmp_path / "plain.tif"
        with rasterio.open(
            bad, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8"
        ) as dst:
            dst.write(np.zeros((1, 8, 8), dtype=np.uint8))
        expected = (IngestError, "no georeferencing")
    with pytest.raises(expected[0], match=expected[1]):
        ingest_raster(db, settings, bad, layer=SLUG)
    assert _versions(db, SLUG) == []
    assert _files(settings) == []
    assert list(settings.upload_dir.iterdir()) == []


def test_database_failure_leaves_neither_row_nor_file(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    raster_layer(db, SLUG)
    # A real refusal by PostgreSQL once the COG has been written.
    db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'disk quota exceeded'; END$$"
    )
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON sdi.layer_versions "
        "FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    source = write_dem(tmp_path / "dem.tif", 300, 200)
    with pytest.raises(Exception, match="disk quota exceeded"):
        ingest_raster(db, settings, source, layer=SLUG)
    assert _versions(db, SLUG) == []
    assert _files(settings) == []
    assert (
        registry.audit.list_audit(db, object_type="layer", object_id=SLUG)[0].action
        == "create"
    )


def test_vector_layer_refuses_a_geotiff(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    registry.create_layer(
        db,
        ensure_agency(db),
        registry.LayerInput(
            slug="landsd_roads",
            title_en="Roads",
            licence_id=registry.get_licence(db, "hk-csdi").id,
        ),
    )
    dem = write_dem(tmp_path / "d.tif", 20, 20)
    with pytest.raises(IngestError, match="holds vector features"):
        ingest_raster(db, settings, dem, layer="landsd_roads")
    assert _files(settings) == []


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_thumbnail(db: Conn, settings: Settings, tmp_path: Path) -> None:
    raster_layer(db, SLUG)
    version = ingest_raster(db, settings, write_dem(tmp_path / "dem.tif"), layer=SLUG)
    for source in (version, tmp_path / "dem.tif"):
        png = thumbnail_png(source, 128, settings=settings)
        path = tmp_path / "thumb.png"
        path.write_bytes(png)
        with rasterio.open(path) as img:
            assert img.driver == "PNG"
            assert (img.width, img.height, img.count) == (128, 96, 4)
            alpha = img.read(4)
        # The nodata hole is transparent, the rest opaque.
        assert 0 < (alpha == 0).mean() < 0.1
        assert set(np.unique(alpha)) == {0, 255}
