"""GDAL's OGC API - Features driver (``OAPIF:``) reads every demo layer.

``ogrinfo``/``ogr2ogr`` run as subprocesses against the real ``sdi serve``;
what they write is read back with fiona and compared with the demo's source
records (HK 1980 Grid) and with SQL on the layer tables.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fiona
import pytest
from shapely.geometry import box, shape

from tests.interop.conftest import (
    CHINESE,
    EPSG2326,
    FILTERS,
    LAYERS,
    Demo,
    Layer,
    in_box,
    max_distance,
    subset_bbox,
    to_hk80,
    vertices,
)

SLUGS = sorted(LAYERS)
#: Centimetre agreement, in metres.
TOLERANCE_M = 0.01


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a GDAL utility; the server is local, so no proxy."""
    env = dict(os.environ, GDAL_HTTP_TIMEOUT="60", CPL_DEBUG="OFF")
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=300, check=False, env=env
    )


def gdal_version() -> tuple[int, int]:
    out = gdal("gdalinfo", "--version").stdout  # "GDAL 3.6.2, released ..."
    major, minor = re.match(r"GDAL (\d+)\.(\d+)", out).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def read_gpkg(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Features of the only layer of a GeoPackage, and the layer's EPSG code."""
    with fiona.open(path) as src:
        epsg = src.crs.to_epsg() if src.crs else None
        features = [
            {
                "properties": dict(f.properties),
                "geometry": {
                    "type": f.geometry.type,
                    "coordinates": f.geometry.coordinates,
                },
            }
            for f in src
        ]
    return features, (f"EPSG:{epsg}" if epsg else None)


def by_key(layer: Layer, features: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Features by the layer's key value; fails on duplicates."""
    out: dict[str, dict[str, Any]] = {}
    for f in features:
        k = str(f["properties"][layer.key])
        assert k not in out, f"{layer.slug}: feature {k} returned twice"
        out[k] = f
    return out


def assert_same_properties(layer: Layer, key: str, got: dict[str, Any]) -> None:
    """Every source attribute came through with its value (floats to 1e-9)."""
    want = layer.properties[key]
    for name, value in want.items():
        assert name in got, f"{layer.slug}: attribute {name} missing"
        if isinstance(value, float):
            assert isinstance(got[name], int | float), (layer.slug, key, name)
            assert math.isclose(got[name], value, abs_tol=1e-9), (
                f"{layer.slug} {key}: {name} is {got[name]!r}, the file has {value!r}"
            )
        else:
            assert got[name] == value, (
                f"{layer.slug} {key}: {name} is {got[name]!r}, the file has {value!r}"
            )


@pytest.fixture(scope="module")
def crs84_exports(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Each layer exported once by ``ogr2ogr -f GPKG`` in the default CRS (CRS84)."""
    out_dir = tmp_path_factory.mktemp("gdal")
    exports = {}
    for slug in SLUGS:
        out = out_dir / f"{slug}.gpkg"
        # a page size below every layer's count makes GDAL follow next links
        # GDAL's default page size (10): it follows next links, and it types
        # the fields from the first page
        run = gdal("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{demo.url}", slug)
        assert run.returncode == 0, run.stderr
        exports[slug] = out
    return exports


def test_ogrinfo_lists_every_demo_layer(demo: Demo) -> None:
    listing = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{demo.url}")
    assert listing.returncode == 0, listing.stderr
    types = {"Polygon": "Polygon", "Point": "Point", "LineString": "Line String"}
    for slug, layer in demo.layers.items():
        assert re.search(
            rf"^\d+: {slug} \(title: .*\) \({types[layer.geometry_type]}\)$",
            listing.stdout,
            re.MULTILINE,
        ), listing.stdout
        summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{demo.url}", slug)
        assert summary.returncode == 0, summary.stderr
        assert f"Feature Count: {demo.count(slug)}\n" in summary.stdout
        # every attribute with its type (GDAL 3.6 guesses types from the first
        # page of items: a whole float written as 344 would make it Integer)
        ogr_types = {"str": "String", "int": "Integer", "float": "Real"}
        for name, kind in layer.fields.items():
            assert re.search(
                rf"^{name}: {ogr_types[kind]}(64)? ", summary.stdout, re.MULTILINE
            ), f"{slug}: {name} is not {ogr_types[kind]} in\n{summary.stdout}"


@pytest.mark.parametrize("slug", SLUGS)
def test_ogr2ogr_exports_every_feature_in_crs84(
    demo: Demo, crs84_exports: dict[str, Path], slug: str
) -> None:
    layer = demo.layers[slug]
    features, crs = read_gpkg(crs84_exports[slug])
    assert crs == "EPSG:4326"
    got = by_key(layer, features)
    assert set(got) == set(layer.properties) == demo.keys(slug)
    for key, feature in got.items():
        assert_same_properties(layer, key, feature["properties"])
        lonlat = vertices(feature["geometry"])
        # longitude, latitude (GDAL's traditional order for EPSG:4326)
        assert max_distance(to_hk80(lonlat), layer.coords[key]) < TOLERANCE_M, key
    assert any(f["properties"][CHINESE[slug]] for f in features)


def _hk80_export(demo: Demo, slug: str, out: Path, *extra: str) -> tuple[Path, bool]:
    """``ogr2ogr`` of a layer in EPSG:2326; whether GDAL swapped the axes itself.

    GDAL 3.7 and later negotiate the CRS (``-oo CRS=EPSG:2326``) and swap
    the server's northing, easting into easting, northing. GDAL 3.6 has no CRS
    support in its OAPIF driver: the ``crs`` query parameter given in the URL is
    passed on every request, and the coordinates arrive exactly as the
    server wrote them (northing, easting per OGC API - Features Part 2), under
    a layer GDAL believes is CRS84, hence ``-a_srs``.
    """
    if gdal_version() >= (3, 7):
        source = [f"OAPIF:{demo.url}", slug, "-oo", "CRS=EPSG:2326"]
        swapped = True
    else:
        source = [
            f"OAPIF:{demo.url}/collections/{slug}?crs={EPSG2326}",
            "-a_srs",
            "EPSG:2326",
        ]
        swapped = False
    run = gdal(
        "ogr2ogr", "-f", "GPKG", str(out), *source, "-oo", "PAGE_SIZE=400", *extra
    )
    assert run.returncode == 0, run.stderr
    return out, swapped


@pytest.mark.parametrize("slug", SLUGS)
def test_ogr2ogr_exports_every_feature_in_hk80(
    demo: Demo, crs84_exports: dict[str, Path], slug: str, tmp_path: Path
) -> None:
    layer = demo.layers[slug]
    path, swapped = _hk80_export(demo, slug, tmp_path / f"{slug}_2326.gpkg")
    features, crs = read_gpkg(path)
    assert crs == "EPSG:2326"
    got = by_key(layer, features)
    assert set(got) == set(layer.properties)
    crs84 = by_key(layer, read_gpkg(crs84_exports[slug])[0])
    for key, feature in got.items():
        assert_same_properties(layer, key, feature["properties"])
        coords = vertices(feature["geometry"])
        if not swapped:
            coords = [(e, n) for n, e in coords]
        # HK 1980 Grid: eastings are about 800-870 km, northings 800-850 km
        assert all(800_000 < e < 870_000 and 800_000 < n < 850_000 for e, n in coords)
        # the server's EPSG:2326 output, its CRS84 output taken to EPSG:2326 by
        # pyproj, and the file the demo was ingested from agree to the centimetre
        from_crs84 = to_hk80(vertices(crs84[key]["geometry"]))
        assert max_distance(coords, from_crs84) < TOLERANCE_M, key
        assert max_distance(coords, layer.coords[key]) < TOLERANCE_M, key
    # the wrong order would put eastings among northings: the data say which is which
    e, n = next(iter(layer.coords.values()))[0]
    assert abs(e - n) > 1000, "the demo's first vertex cannot tell the axes apart"


@pytest.mark.parametrize("slug", SLUGS)
def test_ogr2ogr_attribute_filter_in_hk80(
    demo: Demo, slug: str, tmp_path: Path
) -> None:
    """``-where`` on a layer read in EPSG:2326 (GDAL 3.6 cannot ``-spat`` there:
    it takes the layer for CRS84)."""
    layer = demo.layers[slug]
    subset = FILTERS[slug]
    out = tmp_path / "subset_2326.gpkg"
    path, swapped = _hk80_export(demo, slug, out, "-where", subset.ogr)
    got = by_key(layer, read_gpkg(path)[0])
    expected = demo.keys(slug, subset.sql, *subset.params)
    assert 0 < len(expected) < demo.count(slug)
    assert set(got) == expected
    for key, feature in got.items():
        assert subset.test(feature["properties"]), key
        coords = vertices(feature["geometry"])
        if not swapped:
            coords = [(e, n) for n, e in coords]
        assert max_distance(coords, layer.coords[key]) < TOLERANCE_M, key


@pytest.mark.parametrize("slug", SLUGS)
def test_ogr2ogr_filtered_subset(demo: Demo, slug: str, tmp_path: Path) -> None:
    layer = demo.layers[slug]
    subset = FILTERS[slug]
    bbox = subset_bbox(layer, subset)
    out = tmp_path / "subset.gpkg"
    mark = demo.log_mark()
    run = gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{demo.url}", slug,
        "-spat", *(repr(v) for v in bbox), "-where", subset.ogr, "-oo", "PAGE_SIZE=100",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = by_key(layer, read_gpkg(out)[0])
    expected = subset.expected(demo, slug, bbox)
    # both the box and the attribute filter leave features out
    assert 0 < len(expected) < demo.count(slug, subset.sql, *subset.params)
    assert len(expected) < demo.count(slug, in_box(), *bbox)
    assert set(got) == expected
    window = box(*bbox)
    for key, feature in got.items():
        assert subset.test(feature["properties"]), (key, feature["properties"])
        assert_same_properties(layer, key, feature["properties"])
        assert shape(feature["geometry"]).intersects(window), key
    # the box and an equality on a queryable are filtered by the server
    items = [r for r in demo.requests_since(mark) if f"/{slug}/items" in r]
    assert items and all("bbox=" in r for r in items[1:]), items
    if " = " in subset.ogr:  # as name=value (GDAL 3.6) or in a CQL2 filter
        name, value = subset.ogr.split(" = ")
        assert all(f"{name}={value}" in r or "filter=" in r for r in items[1:])


def test_filtered_count_agrees_with_the_server(demo: Demo) -> None:
    """``ogrinfo -where`` on Chinese text counts what the database holds.

    GDAL 3.6 sends the equality as ``ROUTE_NAMEC=<UTF-8, percent-encoded>``
    (it would send CQL only if the OpenAPI document offered ``filter-lang``
    ``cql-text``, the pre-standard name).
    """
    where = "ROUTE_NAMEC = '屯門公路'"
    mark = demo.log_mark()
    run = gdal(
        "ogrinfo", "-ro", "-so", f"OAPIF:{demo.url}", "td_roads", "-where", where
    )
    assert run.returncode == 0, run.stderr
    count = demo.count("td_roads", '"ROUTE_NAMEC" = %s', "屯門公路")
    assert count > 0
    assert f"Feature Count: {count}\n" in run.stdout
    sent = quote("屯門公路")  # as ROUTE_NAMEC=..., or in a CQL2 filter
    assert any(sent in r for r in demo.requests_since(mark)), "filtered by GDAL"


def test_geojson_output_is_utf8(demo: Demo) -> None:
    """Big5-HKSCS names from the bus stops' Shapefile reach GDAL as UTF-8 text."""
    run = gdal(
        "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", f"OAPIF:{demo.url}", "td_bus_stops",
        "-where", "STOP_ID = 10001",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    [feature] = json.loads(run.stdout)["features"]
    want = demo.layers["td_bus_stops"].properties["10001"]
    assert feature["properties"]["STOP_NAMEC"] == want["STOP_NAMEC"]
