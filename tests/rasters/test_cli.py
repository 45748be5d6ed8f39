"""``sdi ingest`` sends GeoTIFFs to the raster loader and registers raster layers."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from sdi import registry
from sdi.cli import cli
from sdi.settings import Settings
from tests.api.layerdata import Conn, ensure_agency
from tests.rasters.files import write_dem, write_rgb, write_sparse


def _run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": settings.database_url,
        "SDI_VAR_DIR": str(settings.var_dir),
        "SDI_COLLECTIONS_DIR": str(settings.collections_dir),
        "SDI_CONFIG_DIR": str(settings.config_dir),
    }
    return CliRunner().invoke(cli, ["ingest", *args], env=env)


def test_sdi_ingest_geotiff(db: Conn, settings: Settings, tmp_path: Path) -> None:
    ensure_agency(db, "landsd")
    dem = write_dem(tmp_path / "dem.tif", 120, 90)
    result = _run(
        settings, str(dem), "--layer", "landsd_dem", "--agency", "landsd", "--publish"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "landsd_dem version 1: 120 x 90 cells, 1 band(s) of float32 (EPSG:2326); COG "
    )
    assert "Registered raster layer landsd_dem for landsd" in result.stderr
    layer = registry.get_layer(db, "landsd_dem")
    assert layer.kind == "raster" and layer.published_version == 1
    assert (settings.raster_dir / "landsd_dem" / "v1.tif").is_file()
    assert (settings.collections_dir / "landsd_dem.yml").is_file()

    # Any file for a raster layer goes to the raster loader, which explains.
    text = tmp_path / "notes.csv"
    text.write_text("a,b\n1,2\n")
    result = _run(settings, str(text), "--layer", "landsd_dem")
    assert result.exit_code != 0 and "not a raster" in result.output

    # A failed upload to a new layer leaves no layer behind.
    bad = tmp_path / "bad.tif"
    bad.write_bytes(write_rgb(tmp_path / "o.tif").read_bytes()[:500])
    result = _run(settings, str(bad), "--layer", "landsd_ortho", "--agency", "landsd")
    assert result.exit_code != 0 and "truncated" in result.output
    assert [x.slug for x in registry.list_layers(db)] == ["landsd_dem"]


def _bytes_under(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_sdi_ingest_refuses_a_huge_sparse_geotiff_before_converting(
    db: Conn, settings: Settings, tmp_path: Path
) -> None:
    # Issue 9: a 77 KB sparse GeoTIFF declaring 50,000 x 50,000 float32 cells
    # was converted for minutes at 1.4 GB of memory.
    ensure_agency(db, "landsd")
    sparse = write_sparse(tmp_path / "huge.tif")
    assert sparse.stat().st_size < 200_000
    result = _run(settings, str(sparse), "--layer", "landsd_huge", "--agency", "landsd")
    assert result.exit_code != 0
    assert (
        "huge.tif is 50,000 x 50,000 cells x 1 band(s) = 2,500,000,000 values, more "
        "than this server's limit of 1,000,000,000 (SDI_MAX_RASTER_CELLS)"
    ) in result.output
    assert "Traceback" not in result.output
    # Refused from the header: nothing converted, nothing written, nothing kept.
    raster_dir = settings.raster_dir
    assert not raster_dir.exists() or _bytes_under(raster_dir) == 0
    assert not settings.upload_dir.exists() or _bytes_under(settings.upload_dir) == 0
    assert registry.list_layers(db) == []
