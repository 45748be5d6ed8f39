"""Published rasters over HTTP: coverages (GeoTIFF, PNG, CoverageJSON) and map tiles.

Real COGs from ``ingest_raster``, a real server (``tests.api``'s), and answers
checked against rasterio's own reads of the uploaded files.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import requests
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.windows import Window

from sdi import registry
from sdi.ingest.raster import ingest_raster
from tests.api.conftest import Server
from tests.api.layerdata import Conn
from tests.rasters.conftest import raster_layer
from tests.rasters.files import DEM_NODATA, DEM_ORIGIN, DEM_RES, write_dem, write_rgb

DEM = "landsd_dem"
RGB = "landsd_ortho"
GEOTIFF = "image/tiff; application=geotiff"
pytestmark = pytest.mark.filterwarnings(
    "ignore::rasterio.errors.NotGeoreferencedWarning"  # decoding PNGs
)


@dataclass
class Published:
    """The server and the uploaded source files."""

    url: str
    dem: Path
    rgb: Path


@pytest.fixture
def published(db: Conn, server: Server, tmp_path: Path) -> Published:
    """A DEM (EPSG:2326) and an RGB image (EPSG:4326), published and public."""
    sources = {
        DEM: write_dem(tmp_path / "dem.tif"),
        RGB: write_rgb(tmp_path / "rgb.tif"),
    }
    for slug, source in sources.items():
        raster_layer(db, slug)
        version = ingest_raster(db, server.settings, source, layer=slug)
        registry.publish(db, slug, version.number)
    return Published(server.url, sources[DEM], sources[RGB])


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, timeout=60)


def geotiff(response: requests.Response) -> tuple[np.ndarray, Any]:
    """The array and profile of a GeoTIFF response."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == GEOTIFF
    with MemoryFile(response.content) as mem, mem.open() as ds:
        return ds.read(), ds.profile


def source_window(path: Path, transform: Any, width: int, height: int) -> Window:
    """The window of ``path``'s grid that a response's transform and size cover."""
    with rasterio.open(path) as src:
        col = (transform.c - src.transform.c) / src.transform.a
        row = (transform.f - src.transform.f) / src.transform.e
    assert abs(col - round(col)) < 1e-6, "not on the source grid"
    assert abs(row - round(row)) < 1e-6, "not on the source grid"
    return Window(round(col), round(row), width, height)


def test_dem_subset_is_the_source_window(published: Published) -> None:
    east0, north1 = DEM_ORIGIN[0] + 4000, DEM_ORIGIN[1] - 750
    url = f"{published.url}/collections/{DEM}/coverage"
    response = get(
        url, f="GTiff", subset=f"E({east0}:{east0 + 1000}),N({north1 - 1000}:{north1})"
    )
    data, profile = geotiff(response)
    assert data.shape == (1, 200, 200)
    assert profile["crs"].to_epsg() == 2326
    assert profile["nodata"] == DEM_NODATA
    assert profile["transform"].a == DEM_RES and profile["transform"].c == east0
    assert profile["transform"].f == north1
    window = source_window(published.dem, profile["transform"], 200, 200)
    assert (window.col_off, window.row_off) == (800, 150)
    with rasterio.open(published.dem) as src:
        expected = src.read(window=window)
    assert np.array_equal(data, expected)
    assert (data == DEM_NODATA).any()  # the hole is in this window, as nodata
    assert 'filename="landsd_dem-v1.tif"' in response.headers["Content-Disposition"]


def test_dem_bbox_in_crs84(published: Published) -> None:
    with rasterio.open(published.dem) as src:
        west, south, _, _ = rasterio.warp.transform_bounds(
            src.crs, "EPSG:4326", *src.bounds
        )
    box = [west + 0.002, south + 0.003, west + 0.01, south + 0.009]
    response = get(
        f"{published.url}/collections/{DEM}/coverage",
        f="GTiff",
        bbox=",".join(str(v) for v in box),
    )
    data, profile = geotiff(response)
    _, height, width = data.shape
    window = source_window(published.dem, profile["transform"], width, height)
    with rasterio.open(published.dem) as src:
        assert np.array_equal(data, src.read(window=window))
        # The cells served cover the requested box.
        covered = rasterio.warp.transform_bounds(
            "EPSG:4326", src.crs, *box, densify_pts=21
        )
    left, top = profile["transform"].c, profile["transform"].f
    assert left <= covered[0] and top >= covered[3]
    assert left + width * DEM_RES >= covered[2]
    assert top - height * DEM_RES <= covered[1]


def test_rgb_bands_and_bbox_crs(published: Published) -> None:
    # EPSG:4326 is latitude first: the bbox is lat,lon,lat,lon.
    response = get(
        f"{published.url}/collections/{RGB}/coverage",
        f="GTiff",
        properties="band2,3",
        bbox="22.30,114.15,22.35,114.20",
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
    )
    data, profile = geotiff(response)
    assert data.shape == (2, 100, 100)
    assert profile["crs"].to_epsg() == 4326
    assert profile["transform"].c == pytest.approx(114.15)
    assert profile["transform"].f == pytest.approx(22.35)
    window = source_window(published.rgb, profile["transform"], 100, 100)
    with rasterio.open(published.rgb) as src:
        assert np.array_equal(data, src.read(indexes=[2, 3], window=window))


def test_gdal_reads_a_subset_back(published: Published, tmp_path: Path) -> None:
    url = f"{published.url}/collections/{DEM}/coverage"
    response = get(url, f="GTiff", subset="E(835000:836000),N(818500:819250)")
    path = tmp_path / "subset.tif"
    path.write_bytes(response.content)
    done = subprocess.run(
        ["gdalinfo", "-json", str(path)], capture_output=True, text=True, check=True
    )
    info = json.loads(done.stdout)
    assert info["size"] == [200, 150]
    assert 'ID["EPSG",2326]' in info["coordinateSystem"]["wkt"]
    assert info["bands"][0]["type"] == "Float32"
    assert info["bands"][0]["noDataValue"] == DEM_NODATA
    assert info["geoTransform"] == [835000.0, 5.0, 0.0, 819250.0, 0.0, -5.0]


def test_scaling(published: Published) -> None:
    url = f"{published.url}/collections/{DEM}/coverage"
    data, profile = geotiff(get(url, f="GTiff", **{"scale-size": "E(300),N(100)"}))
    assert data.shape == (1, 100, 300)
    assert profile["transform"].a == pytest.approx(1200 * DEM_RES / 300)
    assert profile["transform"].e == pytest.approx(-900 * DEM_RES / 100)
    data, _ = geotiff(get(url, f="GTiff", **{"scale-factor": "4"}))
    assert data.shape == (1, 225, 300)
    data, _ = geotiff(get(url, f="GTiff", **{"scale-axes": "N(3)"}))
    assert data.shape == (1, 300, 1200)
    with rasterio.open(published.dem) as src:
        values = src.read(1)
    served = data[data != DEM_NODATA]
    assert served.min() >= values[values != DEM_NODATA].min()  # nearest: real values


def test_png_and_coveragejson(published: Published, tmp_path: Path) -> None:
    url = f"{published.url}/collections/{DEM}/coverage"
    subset = "E(837000:838000),N(820000:821000)"  # holds part of the nodata hole
    response = get(url, f="png", subset=subset)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    path = tmp_path / "c.png"
    path.write_bytes(response.content)
    rgba = decode_png(path)
    assert rgba.shape == (4, 200, 200)
    alpha = rgba[3]
    data, _ = geotiff(get(url, f="GTiff", subset=subset))
    assert np.array_equal(alpha == 0, data[0] == DEM_NODATA)

    response = get(url, f="json", subset="E(837000:837020),N(820000:820010)")
    assert response.headers["Content-Type"] == "application/prs.coverage+json"
    cov = response.json()
    assert cov["type"] == "Coverage"
    assert (
        cov["domain"]["axes"]["x"]["num"] == 4
        and cov["domain"]["axes"]["y"]["num"] == 2
    )
    assert cov["domain"]["referencing"][0]["coordinates"] == ["y", "x"]  # N, E
    values = cov["ranges"]["elevation"]["values"]
    small, _ = geotiff(get(url, f="GTiff", subset="E(837000:837020),N(820000:820010)"))
    expected = [None if v == DEM_NODATA else float(v) for v in small.ravel()]
    assert values == pytest.approx(expected)
    rgb = get(f"{published.url}/collections/{RGB}/coverage", f="png")
    rgb_path = tmp_path / "rgb.png"
    rgb_path.write_bytes(rgb.content)
    with rasterio.open(published.rgb) as src:
        assert np.array_equal(decode_png(rgb_path)[:3], src.read())  # drawn as is


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scale-size": "E(6000),N(3000)"}, "up-samples at most 2x per axis"),
        ({"scale-factor": "0.4"}, "scale-factor of at least 0.5"),
        ({"scale-axes": "N(0.25)"}, "1,800 cells"),
        ({"subset": "Z(1:2)"}, "Unknown axis 'Z'"),
        ({"subset": "E(100:200)"}, "does not overlap"),
        ({"properties": "slope"}, "Unknown property 'slope'"),
        ({"f": "netcdf"}, "Unknown coverage format"),
        ({"scale-factor": "0"}, "positive number"),
        ({"bbox": "1,2,3"}, "bbox takes 4 numbers"),
        ({"datetime": "2020-01-01"}, "no time axis"),
    ],
)
def test_bad_requests_are_400_with_the_reason(
    published: Published, params: dict[str, str], message: str
) -> None:
    params = {"f": "GTiff", **params}
    response = get(f"{published.url}/collections/{DEM}/coverage", **params)
    assert response.status_code == 400, response.text
    assert message in response.json()["description"]


def decode_png(path: Path) -> np.ndarray:
    """RGBA (4, height, width) of a PNG, read by GDAL (palettes expanded)."""
    with rasterio.open(path) as img:
        assert img.driver == "PNG"
        if img.count == 4:
            return img.read()
        assert img.count == 1
        colours = img.colormap(1)  # index -> (r, g, b, a), alpha from tRNS
        lut = np.array([colours.get(i, (0, 0, 0, 0)) for i in range(256)], np.uint8)
        return np.moveaxis(lut[img.read(1)], -1, 0)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return y, x


def test_map_tiles(published: Published, tmp_path: Path) -> None:
    base = f"{published.url}/collections/{DEM}/map/tiles/WebMercatorQuad"
    with rasterio.open(published.dem) as src:
        west, south, east, north = rasterio.warp.transform_bounds(
            src.crs, "EPSG:4326", *src.bounds
        )
    for z in (11, 14, 17):
        y, x = tile_of((west + east) / 2, (south + north) / 2, z)
        response = get(f"{base}/{z}/{y}/{x}")
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Cache-Control"] == "public, max-age=300"
        path = tmp_path / f"{z}.png"
        path.write_bytes(response.content)
        rgba = decode_png(path)
        assert rgba.shape == (4, 256, 256)
        assert rgba[3].max() == 255
        if z == 11:  # the tile is bigger than the DEM: transparent around it
            assert rgba[3].min() == 0
        assert len({tuple(p) for p in rgba[:3].reshape(3, -1).T[::97]}) > 5  # a ramp
    # The nodata lake (around E 838500, N 820875) is see-through on the map too.
    lon, lat = Transformer.from_crs(2326, 4326, always_xy=True).transform(
        838500, 820875
    )
    lake_y, lake_x = tile_of(lon, lat, 14)
    path = tmp_path / "lake.png"
    path.write_bytes(get(f"{base}/14/{lake_y}/{lake_x}").content)
    assert 0.02 < (decode_png(path)[3] == 0).mean() < 0.9
    lake_y, lake_x = tile_of(lon, lat, 18)
    assert get(f"{base}/18/{lake_y}/{lake_x}").status_code == 204  # all lake
    again = requests.get(
        f"{base}/{z}/{y}/{x}",
        headers={"If-None-Match": response.headers["ETag"]},
        timeout=30,
    )
    assert again.status_code == 304 and again.content == b""
    far = get(f"{base}/14/0/0")
    assert far.status_code == 204 and far.content == b""
    assert get(f"{base}/3/9/0").status_code == 404  # no such tile at zoom 3
    rgb_y, rgb_x = tile_of(114.2, 22.32, 15)
    response = get(
        f"{published.url}/collections/{RGB}/map/tiles/WebMercatorQuad/15/{rgb_y}/{rgb_x}"
    )
    assert response.status_code == 200


def test_tile_set_metadata(published: Published) -> None:
    base = f"{published.url}/collections/{DEM}/map/tiles"
    sets = get(base).json()
    (tileset,) = sets["tilesets"]
    assert tileset["dataType"] == "map"
    assert tileset["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    meta = get(f"{base}/WebMercatorQuad").json()
    item = next(link for link in meta["links"] if link["rel"] == "item")
    assert item["href"].endswith("/{tileMatrix}/{tileRow}/{tileCol}")
    limits = {m["tileMatrix"]: m for m in meta["tileMatrixSetLimits"]}
    assert limits["0"] == {
        "tileMatrix": "0", "minTileRow": 0, "maxTileRow": 0, "minTileCol": 0,
        "maxTileCol": 0,
    }  # fmt: skip
    assert get(f"{base}/WorldCRS84Quad").status_code == 404


def test_collection_metadata_and_conformance(published: Published) -> None:
    collection = get(f"{published.url}/collections/{DEM}", f="json").json()
    rels = {link["rel"] for link in collection["links"]}
    ogc = "http://www.opengis.net/def/rel/ogc/1.0"
    assert {f"{ogc}/coverage", f"{ogc}/coverage-domainset", f"{ogc}/coverage-rangetype",
            f"{ogc}/tilesets-map", "license"} <= rels  # fmt: skip
    grid = collection["extent"]["spatial"]["grid"]
    assert [g["cellsCount"] for g in grid] == [1200, 900]
    domainset = get(f"{published.url}/collections/{DEM}/coverage/domainset").json()
    general = domainset["generalGrid"]
    assert general["srsName"] == "http://www.opengis.net/def/crs/EPSG/0/2326"
    assert general["axisLabels"] == ["N", "E"]
    assert general["gridLimits"]["axis"][0]["upperBound"] == 1199
    rangetype = get(f"{published.url}/collections/{DEM}/coverage/rangetype").json()
    (field,) = rangetype["field"]
    assert field["name"] == "elevation" and field["uom"]["code"] == "metre"
    assert field["nilValues"][0]["value"] == DEM_NODATA
    schema = get(f"{published.url}/collections/{DEM}/schema", f="json").json()
    assert schema["properties"]["elevation"]["type"] == "number"

    classes = set(get(f"{published.url}/conformance", f="json").json()["conformsTo"])
    cov = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf"
    tiles = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
    assert {
        f"{cov}/core", f"{cov}/coverage-subset", f"{cov}/coverage-scaling",
        f"{tiles}/core", f"{tiles}/png", f"{tiles}/geodata-tilesets",
    } <= classes  # fmt: skip
    assert f"{cov}/coverage-datetime" not in classes
    assert f"{tiles}/mvt" not in classes
    openapi = get(f"{published.url}/openapi", f="json").json()
    assert f"/collections/{DEM}/coverage" in openapi["paths"]
    coverage_params = openapi["paths"][f"/collections/{DEM}/coverage"]["get"]
    assert "scale-size" in {p.get("name") for p in coverage_params["parameters"]}
    tile_path = "/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    assert f"/collections/{DEM}{tile_path}" in openapi["paths"]
    assert f"/collections/{DEM}/coverage/domainset" in openapi["paths"]
    listed = get(f"{published.url}/collections", f="json").json()["collections"]
    assert {DEM, RGB} <= {c["id"] for c in listed}
    assert get(f"{published.url}/collections/{DEM}", f="html").status_code == 200
    preview = next(
        link["href"]
        for link in collection["links"]
        if link["type"] == "image/png" and link["rel"] == f"{ogc}/coverage"
    )
    assert requests.get(preview, timeout=60).status_code == 200  # fits the limit
    page = get(f"{published.url}/collections/{DEM}/coverage", f="html")
    assert page.status_code == 200 and "scale-factor" in page.text
    assert "unpkg.com" not in page.text and "cdn." not in page.text


def test_unpublished_and_restricted_rasters_are_not_served(
    db: Conn, server: Server, tmp_path: Path
) -> None:
    raster_layer(db, "landsd_draft")
    ingest_raster(
        db, server.settings, write_dem(tmp_path / "a.tif", 64, 64), layer="landsd_draft"
    )
    raster_layer(db, "landsd_secret", visibility="restricted", licence="restricted")
    secret = ingest_raster(
        db,
        server.settings,
        write_dem(tmp_path / "b.tif", 64, 64),
        layer="landsd_secret",
    )
    registry.publish(db, "landsd_secret", secret.number)
    for slug in ("landsd_draft", "landsd_secret"):
        for path in ("", "/coverage", "/coverage/domainset", "/map/tiles",
                     "/map/tiles/WebMercatorQuad/0/0/0"):  # fmt: skip
            response = get(f"{server.url}/collections/{slug}{path}", f="json")
            assert response.status_code == 404, (slug, path, response.text)
