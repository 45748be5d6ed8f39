"""``version=`` on coverages and map tiles, and taking a raster version down
(``sdi layers withdraw``), over real HTTP."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from rasterio.io import MemoryFile

from sdi import registry
from sdi.cli import cli
from sdi.ingest.raster import ingest_raster
from sdi.settings import Settings
from tests.api.conftest import Server
from tests.api.layerdata import Conn
from tests.rasters.conftest import raster_layer
from tests.rasters.files import write_dem

SLUG = "landsd_dem"
#: Cache-Control of an explicit version (SDI_VERSION_MAX_AGE, default a day).
VERSION_CACHE = "public, max-age=86400"
REASON = "Wrong survey: the file covers a restricted site."
pytestmark = pytest.mark.filterwarnings(
    "ignore::rasterio.errors.NotGeoreferencedWarning"
)

#: Width x height of each uploaded version: the coverage's size names it.
SIZES = {1: (200, 150), 2: (240, 180), 3: (160, 120)}


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, timeout=60)


def size(response: requests.Response) -> tuple[int, int]:
    assert response.status_code == 200, response.text
    with MemoryFile(response.content) as mem, mem.open() as ds:
        return ds.width, ds.height


def ingest(db: Conn, settings: Settings, tmp_path: Path, number: int) -> None:
    width, height = SIZES[number]
    source = write_dem(tmp_path / f"v{number}.tif", width, height)
    version = ingest_raster(db, settings, source, layer=SLUG)
    assert version.number == number


def wait_coverage(server: Server, expected: tuple[int, int]) -> None:
    """Until the API serves the published version of ``expected`` size.

    Until it follows the new generation (at most 0.5 s) a process may still
    point at a COG just deleted: that request fails, the next one is right.
    """
    deadline = time.monotonic() + 20
    while True:
        response = get(f"{server.url}/collections/{SLUG}/coverage", f="GTiff")
        if response.status_code == 200 and size(response) == expected:
            return
        # A stale configuration pointing at a deleted COG is a retryable 503.
        if response.status_code != 200:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def tile_url(server: Server) -> str:
    """A z12 map tile holding data of every version (from the tile set limits)."""
    meta = get(f"{server.url}/collections/{SLUG}/map/tiles/WebMercatorQuad").json()
    limits = next(r for r in meta["tileMatrixSetLimits"] if r["tileMatrix"] == "12")
    row, col = limits["minTileRow"], limits["minTileCol"]
    return f"{server.url}/collections/{SLUG}/map/tiles/WebMercatorQuad/12/{row}/{col}"


@pytest.fixture
def dem(db: Conn, server: Server, tmp_path: Path) -> Server:
    """Versions 1 and 2 of the DEM; 2 published."""
    raster_layer(db, SLUG)
    ingest(db, server.settings, tmp_path, 1)
    ingest(db, server.settings, tmp_path, 2)
    registry.publish(db, SLUG, 2)
    wait_coverage(server, SIZES[2])
    return server


def assert_gone(response: requests.Response, text: str) -> None:
    assert response.status_code == 410, (response.status_code, response.text)
    body = response.json()
    assert body["code"] == "Gone" and text in body["description"]
    assert any(lk["rel"] == "latest-version" for lk in body["links"])


def test_coverage_and_map_tiles_serve_the_version_asked_for(dem: Server) -> None:
    coverage = f"{dem.url}/collections/{SLUG}/coverage"
    # issue 9: 0, 999 and abc all answered 200 with the published version
    assert get(coverage, version="abc").status_code == 400
    assert "version must be a version number" in get(coverage, version="abc").text
    for unknown in ("0", "999"):
        response = get(coverage, version=unknown, f="GTiff")
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "NotFound"
    old = get(coverage, version=1, f="GTiff")
    assert size(old) == SIZES[1]
    assert old.headers["Cache-Control"] == VERSION_CACHE
    current = get(coverage, f="GTiff")
    assert size(current) == SIZES[2]
    assert current.headers.get("Cache-Control") != VERSION_CACHE
    assert (
        get(coverage, version=1, f="json").json()["domain"]["axes"]["x"]["num"]
        == (SIZES[1][0])
    )
    tile = tile_url(dem)
    assert get(tile, version="abc").status_code == 400
    assert get(tile, version=999).status_code == 404
    v1_tile, v2_tile = get(tile, version=1), get(tile)
    assert v1_tile.status_code == 200 and v2_tile.status_code == 200
    assert v1_tile.headers["Cache-Control"] == VERSION_CACHE
    assert v1_tile.headers["Cache-Control"] != v2_tile.headers["Cache-Control"]
    assert v1_tile.headers["ETag"] != v2_tile.headers["ETag"]


def _sdi(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": settings.database_url,
        "SDI_VAR_DIR": str(settings.var_dir),
        "SDI_COLLECTIONS_DIR": str(settings.collections_dir),
        "SDI_CONFIG_DIR": str(settings.config_dir),
    }
    return CliRunner().invoke(cli, list(args), env=env)


def test_withdraw_a_raster_version_with_the_cli(
    dem: Server, db: Conn, tmp_path: Path
) -> None:
    settings = dem.settings
    cog = settings.raster_dir / SLUG / "v2.tif"
    assert cog.is_file()
    tile = tile_url(dem)
    refused = _sdi(settings, "layers", "withdraw", SLUG, "2", "--yes")
    assert refused.exit_code != 0 and "--reason" in refused.output
    withdraw = ("layers", "withdraw", SLUG, "2", "--reason", REASON, "--yes")
    result = _sdi(settings, *withdraw)
    assert result.exit_code == 0, result.output
    assert "withdrew landsd_dem version 2" in result.stdout
    assert "published version 2 -> 1" in result.stdout
    again = _sdi(settings, *withdraw)
    assert again.exit_code == 1 and "already withdrawn" in again.output
    assert "Traceback" not in again.output

    assert not cog.exists()
    assert (settings.raster_dir / SLUG / "v1.tif").is_file()
    wait_coverage(dem, SIZES[1])
    coverage = f"{dem.url}/collections/{SLUG}/coverage"
    for response in (
        get(coverage, version=2, f="GTiff"),
        get(coverage, version=2, f="json"),
        get(tile, version=2),
    ):
        assert_gone(response, REASON.rstrip("."))
    assert size(get(coverage, version=1, f="GTiff")) == SIZES[1]
    entry = next(
        e
        for e in registry.audit.list_audit(db, object_type="layer", object_id=SLUG)
        if e.action == "withdraw"
    )
    assert (entry.actor, entry.details["reason"]) == ("cli", REASON)
    listing = _sdi(settings, "versions", SLUG)
    assert "withdrawn" in listing.stdout

    # The next upload takes number 3 and is served; 2 stays gone.
    ingest(db, settings, tmp_path, 3)
    registry.publish(db, SLUG, 3)
    wait_coverage(dem, SIZES[3])
    assert size(get(coverage, version=3, f="GTiff")) == SIZES[3]
    assert_gone(get(coverage, version=2), REASON.rstrip("."))

    # Rolled back below 3: a link pinned to version 3 is 410, not 404.
    registry.publish(db, SLUG, 1)
    wait_coverage(dem, SIZES[1])
    assert_gone(get(coverage, version=3, f="GTiff"), "rolled back to version 1")
    assert_gone(get(tile, version=3), "rolled back to version 1")


def test_a_deleted_cog_of_the_served_version_is_503_not_500(dem: Server) -> None:
    """What a worker still on the previous configuration sees for the moment
    between a withdrawal's commit and its next look at the generation."""
    (dem.settings.raster_dir / SLUG / "v2.tif").unlink()
    tile = tile_url(dem)
    for response in (
        get(f"{dem.url}/collections/{SLUG}/coverage", f="GTiff"),
        get(f"{dem.url}/collections/{SLUG}/coverage", f="json"),
        get(tile),
    ):
        assert response.status_code == 503, (response.status_code, response.text)
        assert response.headers["Retry-After"] == "1"
        assert response.json()["code"] == "ServiceUnavailable"
        assert "raster" not in response.json()["description"].lower()


def test_domainset_and_rangetype_follow_version(dem: Server, db: Conn) -> None:
    """They ignored ``version=`` as the coverage did (issue 9): ``abc`` answered
    200, and a withdrawn version's domain set was the published one's, 200."""
    base = f"{dem.url}/collections/{SLUG}/coverage"
    for part in ("domainset", "rangetype"):
        url = f"{base}/{part}"
        assert get(url, version="abc").status_code == 400
        assert get(url, version=999).status_code == 404
        assert get(url).status_code == 200
        old = get(url, version=1)
        assert old.status_code == 200, old.text
        assert old.headers["Cache-Control"] == VERSION_CACHE
    axes = {
        str(a["axisLabel"]): a["upperBound"] - a["lowerBound"]
        for a in get(f"{base}/domainset", version=1).json()["generalGrid"]["axis"]
    }
    current = {
        str(a["axisLabel"]): a["upperBound"] - a["lowerBound"]
        for a in get(f"{base}/domainset").json()["generalGrid"]["axis"]
    }
    assert axes != current  # version 1's grid, not the published one's
    registry.withdraw_version(db, SLUG, 1, REASON, by=None)
    deadline = time.monotonic() + 20  # until the API follows the withdrawal
    while get(f"{base}/domainset", version=1).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for part in ("domainset", "rangetype"):
        assert_gone(get(f"{base}/{part}", version=1), REASON.rstrip("."))
