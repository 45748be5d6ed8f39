"""The admin app's review page for a raster version: picture, grid, bands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from flask.testing import FlaskClient

from sdi import registry
from sdi.ingest.raster import ingest_raster
from sdi.registry.models import User
from sdi.settings import Settings
from tests.admin.conftest import (
    Conn,
    People,
    app,
    client_for,
    people,
)
from tests.rasters.files import write_dem

__all__ = ["app", "client_for", "people"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_review_a_raster_version(
    conn: Conn,
    settings: Settings,
    people: People,
    client_for: Callable[[User], FlaskClient],
    tmp_path: Path,
) -> None:
    registry.create_layer(
        conn,
        people.agency,
        registry.LayerInput(
            slug="landsd_dem",
            title_en="Elevation",
            licence_id=registry.get_licence(conn, "hk-csdi").id,
            kind="raster",
        ),
    )
    ingest_raster(conn, settings, write_dem(tmp_path / "dem.tif"), layer="landsd_dem")
    client = client_for(people.editor)
    page = client.get("/layers/landsd_dem/versions/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="stat-cells">1,200 × 900<' in html
    assert "EPSG:2326" in html and "<code>elevation</code>" in html
    assert "Publish this version" in html

    thumb = client.get("/layers/landsd_dem/versions/1/thumbnail.png")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    path = tmp_path / "thumb.png"
    path.write_bytes(thumb.data)
    with rasterio.open(path) as img:
        assert (img.width, img.height) == (512, 384)
        assert 0 < (img.read(4) == 0).mean() < 0.1  # the nodata lake

    cog = client.get("/layers/landsd_dem/versions/1/download")
    assert cog.status_code == 200
    assert cog.headers["Content-Disposition"].endswith("filename=landsd_dem-v1.tif")
    with rasterio.MemoryFile(cog.data) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 2326 and ds.overviews(1)
        assert not np.isnan(ds.read(1, window=((0, 10), (0, 10)))).any()

    # Another agency's users do not see it.
    other = client_for(people.other_editor)
    assert other.get("/layers/landsd_dem/versions/1/thumbnail.png").status_code == 404
