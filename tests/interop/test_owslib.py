"""OWSLib's OGC API - Features client reads every demo layer.

``owslib.ogcapi.features.Features`` against the real ``sdi serve``: the
collections, items in CRS84 and EPSG:2326 (OGC API - Features Part 2: the
server answers in the CRS's own axis order, northing then easting), bbox and
property filters, CQL2 text filters (Part 3) and paging through ``next``
links. Compared with the demo's source records and SQL.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from owslib.ogcapi.features import Features
from shapely.geometry import box, shape

from tests.interop.conftest import (
    CRS84,
    EPSG2326,
    FILTERS,
    LAYERS,
    Demo,
    Filter,
    Layer,
    max_distance,
    subset_bbox,
    to_hk80,
    vertices,
)

SLUGS = sorted(LAYERS)
TOLERANCE_M = 0.01
#: Above every demo layer's size, within the server's largest page.
ALL = 5000

#: An equality per layer, sent as a ``name=value`` query parameter (Chinese
#: text for two of them).
EQUALITIES: dict[str, tuple[str, object]] = {
    "landsd_buildings": ("DISTRICT_TC", "旺角"),
    "td_bus_stops": ("ROUTES", "E23"),
    "td_roads": ("ROUTE_NAMEC", "屯門公路"),
}


def equality(slug: str) -> Filter:
    name, value = EQUALITIES[slug]
    return Filter(
        ogr="", qgis="", cql2="", sql=f'"{name}" = %s', params=(value,),
        test=lambda p: p[name] == value,
    )  # fmt: skip


@pytest.fixture(scope="module")
def api(demo: Demo) -> Features:
    return Features(demo.url, timeout=120)


def by_key(layer: Layer, features: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in features:
        k = str(f["properties"][layer.key])
        assert k not in out, f"{layer.slug}: feature {k} returned twice"
        out[k] = f
    return out


def assert_same_properties(layer: Layer, key: str, got: dict[str, Any]) -> None:
    for name, value in layer.properties[key].items():
        assert name in got, f"{layer.slug}: attribute {name} missing"
        if isinstance(value, float):
            assert math.isclose(got[name], value, abs_tol=1e-9), (layer.slug, key)
        else:
            assert got[name] == value, (layer.slug, key, name, got[name], value)


def fids(demo: Demo, slug: str) -> dict[str, int]:
    """Key value -> ``_sdi_fid`` (the item id) of the published features."""
    rows = demo.query(
        f'SELECT "{LAYERS[slug]}"::text, _sdi_fid FROM sdi_data."{slug}" '  # noqa: S608
        f"WHERE {demo.published_where(slug)}"
    )
    return {k: int(fid) for k, fid in rows}


def test_collections_list_every_demo_layer(demo: Demo, api: Features) -> None:
    collections = {c["id"]: c for c in api.collections()["collections"]}
    assert set(LAYERS) <= set(collections)
    assert set(api.feature_collections()) >= set(LAYERS)
    conformance = api.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
    for slug in LAYERS:
        c = collections[slug]
        assert c["itemType"] == "feature"
        assert CRS84 in c["crs"] and EPSG2326 in c["crs"]
        assert api.collection(slug)["storageCrs"] == CRS84
        queryables = api.collection_queryables(slug)["properties"]
        assert set(
            demo.layers[slug].properties[next(iter(demo.layers[slug].properties))]
        ) <= set(queryables)


@pytest.mark.parametrize("slug", SLUGS)
def test_items_in_crs84(demo: Demo, api: Features, slug: str) -> None:
    layer = demo.layers[slug]
    page = api.collection_items(slug, limit=ALL)
    assert page["numberMatched"] == page["numberReturned"] == demo.count(slug)
    got = by_key(layer, page["features"])
    assert set(got) == set(layer.properties)
    ids = fids(demo, slug)
    for key, feature in got.items():
        assert feature["id"] == ids[key]
        assert_same_properties(layer, key, feature["properties"])
        lonlat = vertices(feature["geometry"])
        assert max_distance(to_hk80(lonlat), layer.coords[key]) < TOLERANCE_M, key


@pytest.mark.parametrize("slug", SLUGS)
def test_items_in_hk80(demo: Demo, api: Features, slug: str) -> None:
    layer = demo.layers[slug]
    page = api.collection_items(slug, limit=ALL, crs=EPSG2326)
    assert api.response_headers["Content-Crs"] == f"<{EPSG2326}>"
    got = by_key(layer, page["features"])
    assert set(got) == set(layer.properties)
    crs84 = by_key(layer, api.collection_items(slug, limit=ALL)["features"])
    for key, feature in got.items():
        assert_same_properties(layer, key, feature["properties"])
        # Part 2: EPSG:2326's axis order, northing first
        en = [(e, n) for n, e in vertices(feature["geometry"])]
        assert max_distance(en, layer.coords[key]) < TOLERANCE_M, key
        from_crs84 = to_hk80(vertices(crs84[key]["geometry"]))
        assert max_distance(en, from_crs84) < TOLERANCE_M, key


@pytest.mark.parametrize("slug", SLUGS)
def test_bbox_and_property_filter(demo: Demo, api: Features, slug: str) -> None:
    layer = demo.layers[slug]
    subset = equality(slug)
    name, value = EQUALITIES[slug]
    bbox = subset_bbox(layer, subset)
    page = api.collection_items(slug, limit=ALL, bbox=list(bbox), **{name: value})
    expected = subset.expected(demo, slug, bbox)
    # the box cuts through the features the equality keeps
    assert 0 < len(expected) < demo.count(slug, subset.sql, *subset.params)
    assert page["numberMatched"] == len(expected)
    got = by_key(layer, page["features"])
    assert set(got) == expected
    for key, feature in got.items():
        assert feature["properties"][name] == value
        assert shape(feature["geometry"]).intersects(box(*bbox)), key


@pytest.mark.parametrize("slug", SLUGS)
def test_bbox_in_hk80(demo: Demo, api: Features, slug: str) -> None:
    """``bbox-crs=EPSG:2326``: the box in that CRS's axis order (northing first)."""
    layer = demo.layers[slug]
    subset = equality(slug)
    name, value = EQUALITIES[slug]
    e0, n0, e1, n1 = subset_bbox(layer, subset, hk80=True)
    page = api.collection_items(
        slug, limit=ALL, bbox=[n0, e0, n1, e1], crs=EPSG2326,
        **{"bbox-crs": EPSG2326, name: value},
    )  # fmt: skip
    expected = subset.expected(demo, slug, (e0, n0, e1, n1), 2326)
    assert 0 < len(expected) < demo.count(slug, subset.sql, *subset.params)
    got = by_key(layer, page["features"])
    assert set(got) == expected
    for key, feature in got.items():
        en = [(e, n) for n, e in vertices(feature["geometry"])]
        assert max_distance(en, layer.coords[key]) < TOLERANCE_M, key


@pytest.mark.parametrize("slug", SLUGS)
def test_cql2_text_filter(demo: Demo, api: Features, slug: str) -> None:
    """OGC API - Features Part 3: ``filter`` in CQL2 text, with a bbox."""
    layer = demo.layers[slug]
    subset = FILTERS[slug]
    bbox = subset_bbox(layer, subset)
    page = api.collection_items(
        slug, limit=ALL, bbox=list(bbox), filter=subset.cql2,
        **{"filter-lang": "cql2-text"},
    )  # fmt: skip
    expected = subset.expected(demo, slug, bbox)
    assert 0 < len(expected) < demo.count(slug, subset.sql, *subset.params)
    assert page["numberMatched"] == len(expected)
    got = by_key(layer, page["features"])
    assert set(got) == expected
    for key, feature in got.items():
        assert subset.test(feature["properties"]), key
        assert_same_properties(layer, key, feature["properties"])


@pytest.mark.parametrize("crs", [CRS84, EPSG2326], ids=["crs84", "hk80"])
@pytest.mark.parametrize("slug", SLUGS)
def test_paging_through_next_links(
    demo: Demo, api: Features, slug: str, crs: str
) -> None:
    """Following ``next`` links gives every feature exactly once, in both CRSs."""
    layer = demo.layers[slug]
    limit = 97 if slug == "td_roads" else 487  # pages that do not divide the count
    params: dict[str, Any] = {"limit": limit, "crs": crs}
    seen: list[int] = []
    keys: list[str] = []
    pages = 0
    while True:
        page = api.collection_items(slug, **params)
        pages += 1
        assert page["numberMatched"] == demo.count(slug)
        assert page["numberReturned"] == len(page["features"]) <= limit
        seen += [f["id"] for f in page["features"]]
        keys += [str(f["properties"][layer.key]) for f in page["features"]]
        nxt = [link for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        assert len(nxt) == 1
        query = dict(parse_qsl(urlsplit(nxt[0]["href"]).query))
        assert query.get("crs", crs) == crs, "the next link lost the crs"
        params = {k: v for k, v in query.items() if k != "f"} | {"crs": crs}
        assert pages < 100
    assert pages == math.ceil(demo.count(slug) / limit)
    assert len(seen) == len(set(seen)) == demo.count(slug)
    assert sorted(keys) == sorted(layer.properties)
    assert set(seen) == set(fids(demo, slug).values())
