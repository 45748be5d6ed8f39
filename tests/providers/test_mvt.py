"""Vector tiles cut by PostGIS (sdi.providers.mvt), checked against shapely/pyproj.

Tiles are decoded with mapbox-vector-tile and compared with the stored
geometries, transformed and clipped independently: which features, their ids,
attributes and shapes.
"""

from __future__ import annotations

import math
import random
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from psycopg import sql
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from sdi.providers.mvt import (
    BUFFER,
    EXACT_ZOOM,
    EXTENT,
    TileLayer,
    geometry_type,
    largest_feature,
    render_vector_tile,
    tile_sql,
)
from tests.api.layerdata import Conn, Feat, add_version, create_layer

ORIGIN = 20037508.342789244
TO_MERC = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
FROM_MERC = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
FIELDS = [("NAME_EN", "text"), ("NAME_TC", "text"), ("FLOORS", "bigint"),
          ("HEIGHT_M", "double precision"), ("OPENED", "date"),
          ("GREEN_%", "double precision")]  # fmt: skip
ALL = tuple(name for name, _ in FIELDS)
CENTRAL = (114.158, 22.282)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """(z, y, x) of the WebMercatorQuad tile holding lon/lat."""
    mx, my = TO_MERC.transform(lon, lat)
    size = 2 * ORIGIN / (1 << z)
    return z, int((ORIGIN - my) // size), int((mx + ORIGIN) // size)


def tile_box(z: int, y: int, x: int) -> tuple[float, float, float, float]:
    size = 2 * ORIGIN / (1 << z)
    left, top = -ORIGIN + x * size, ORIGIN - y * size
    return left, top - size, left + size, top


def unit(z: int) -> float:
    """Metres (EPSG:3857) per tile grid unit at zoom ``z``."""
    return 2 * ORIGIN / (1 << z) / EXTENT


def merc(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(
        geom, lambda xy: _stack(TO_MERC.transform(xy[:, 0], xy[:, 1]))
    )


def _stack(xy: tuple[Any, Any]) -> Any:
    import numpy as np

    return np.column_stack(xy)


def decode(data: bytes | None, name: str) -> dict[int, dict[str, Any]]:
    """Features of layer ``name`` by id: geometry (grid units, y down), properties."""
    assert data is not None
    tile = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    assert set(tile) == {name}
    assert tile[name]["extent"] == EXTENT
    features = tile[name]["features"]
    out = {f["id"]: f for f in features}
    assert len(out) == len(features), "feature ids repeat"
    return out


def to_merc(feature: dict[str, Any], z: int, y: int, x: int) -> BaseGeometry:
    """A decoded feature's geometry back in EPSG:3857 metres."""
    left, _, _, top = tile_box(z, y, x)
    u = unit(z)
    geom = shape(feature["geometry"])
    return shapely.transform(
        geom, lambda p: _stack((left + p[:, 0] * u, top - p[:, 1] * u))
    )


def random_feats(n: int, seed: int = 7) -> list[Feat]:
    """Rectangles, L-shapes and lines 8-60 m across, within ~1.2 km of Central."""
    rng = random.Random(seed)
    lon0, lat0 = CENTRAL
    feats = []
    for i in range(n):
        lon = lon0 + rng.uniform(-0.012, 0.012)
        lat = lat0 + rng.uniform(-0.011, 0.011)
        w = rng.uniform(8, 60) / 103_000
        h = rng.uniform(8, 60) / 110_500
        kind = i % 3
        if kind == 0:
            geom: BaseGeometry = box(lon, lat, lon + w, lat + h)
        elif kind == 1:
            geom = shapely.Polygon(
                [(lon, lat), (lon + w, lat), (lon + w, lat + h / 2),
                 (lon + w / 2, lat + h / 2), (lon + w / 2, lat + h), (lon, lat + h)]
            )  # fmt: skip
        else:
            geom = shapely.LineString(
                [(lon, lat), (lon + w, lat + h), (lon + 2 * w, lat)]
            )
        feats.append(
            Feat(
                key=f"F{i:05d}",
                props={
                    "NAME_EN": f"Building {i}",
                    "NAME_TC": f"大廈{i}號",
                    "FLOORS": i % 40 + 1,
                    "HEIGHT_M": round(i * 0.75 + 0.25, 2),
                    "OPENED": f"20{i % 20:02d}-0{1 + i % 9}-1{i % 10}",
                    "GREEN_%": None if i % 4 == 0 else i / 100,
                },
                wkt=geom.wkt,
            )
        )
    return feats


def stored(db: Conn, slug: str, version: int) -> dict[int, tuple[BaseGeometry, str]]:
    """{fid: (geometry in 4326, key)} of the version, read back from the table."""
    rows = db.execute(
        sql.SQL(
            "SELECT _sdi_fid, ST_AsText(ST_Transform(_sdi_geom, 4326)), _sdi_key "
            "FROM {} WHERE _sdi_from <= %s AND (_sdi_to IS NULL OR _sdi_to > %s)"
        ).format(sql.Identifier("sdi_data", slug)),
        (version, version),
    ).fetchall()
    return {fid: (shapely.from_wkt(wkt), key) for fid, wkt, key in rows}


@pytest.fixture
def dense(db: Conn) -> dict[int, tuple[BaseGeometry, str]]:
    create_layer(db, "landsd_dense", fields=FIELDS)
    add_version(db, "landsd_dense", random_feats(1500))
    return stored(db, "landsd_dense", 1)


def layer(props: tuple[str, ...] = (), version: int = 1) -> TileLayer:
    return TileLayer("landsd_dense", 4326, version, props, "landsd_dense")


def buffered(tile: tuple[int, int, int]) -> BaseGeometry:
    """The tile's envelope with its buffer, in EPSG:3857."""
    left, bottom, right, top = tile_box(*tile)
    m = BUFFER * unit(tile[0])
    return box(left - m, bottom - m, right + m, top + m)


def expected_ids(
    features: dict[int, tuple[BaseGeometry, str]],
    tile: tuple[int, int, int],
    grow_units: float,
) -> set[int]:
    """Ids of features meeting the tile's buffered envelope grown by some units."""
    left, bottom, right, top = tile_box(*tile)
    m = (BUFFER + grow_units) * unit(tile[0])
    area = box(left - m, bottom - m, right + m, top + m)
    return {fid for fid, (g, _) in features.items() if merc(g).intersects(area)}


@pytest.mark.parametrize("zoom", [EXACT_ZOOM, 17])
def test_features_are_exactly_those_meeting_the_tile(
    dense: dict[int, tuple[BaseGeometry, str]], zoom: int
) -> None:
    tile = tile_of(*CENTRAL, zoom)
    got = decode(render_vector_tile(layer(ALL), *tile), "landsd_dense")
    # Slivers thinner than a grid unit at the buffer's edge may collapse.
    assert expected_ids(dense, tile, -2) <= set(got) <= expected_ids(dense, tile, 0.5)
    assert len(got) > 20
    clip = buffered(tile)
    for fid, feature in got.items():
        mine = to_merc(feature, *tile)
        theirs = merc(dense[fid][0]).intersection(clip)
        # Snapped to the grid: within about a unit of the true shape.
        assert mine.hausdorff_distance(theirs) <= 1.5 * unit(zoom), fid
        assert feature["geometry"]["type"].replace("Multi", "") == dense[fid][
            0
        ].geom_type.replace("Multi", "")
        # Within the tile and its buffer.
        for px, py in shapely.get_coordinates(shape(feature["geometry"])):
            assert -BUFFER <= px <= EXTENT + BUFFER and -BUFFER <= py <= EXTENT + BUFFER


def test_ids_and_attributes(dense: dict[int, tuple[BaseGeometry, str]]) -> None:
    tile = tile_of(*CENTRAL, EXACT_ZOOM)
    got = decode(render_vector_tile(layer(ALL), *tile), "landsd_dense")
    for fid, feature in got.items():
        i = int(dense[fid][1][1:])
        props = feature["properties"]
        assert props["NAME_EN"] == f"Building {i}"
        assert props["NAME_TC"] == f"大廈{i}號"
        assert props["FLOORS"] == i % 40 + 1
        assert props["HEIGHT_M"] == pytest.approx(round(i * 0.75 + 0.25, 2))
        assert props["OPENED"] == f"20{i % 20:02d}-0{1 + i % 9}-1{i % 10}"
        if i % 4 == 0:
            assert "GREEN_%" not in props  # NULL: no value in MVT
        else:
            assert props["GREEN_%"] == pytest.approx(i / 100)
    # Only the attributes asked for; none at all is fine too.
    some = decode(render_vector_tile(layer(("NAME_TC",)), *tile), "landsd_dense")
    assert set(some) == set(got)
    assert {k for f in some.values() for k in f["properties"]} == {"NAME_TC"}
    bare = decode(render_vector_tile(layer(()), *tile), "landsd_dense")
    assert set(bare) == set(got)
    assert all(not f["properties"] for f in bare.values())


def test_empty_and_invalid_tiles(dense: dict[int, tuple[BaseGeometry, str]]) -> None:
    assert render_vector_tile(layer(), *tile_of(-0.1, 51.5, 14)) is None  # London
    for bad in [(25, 0, 0), (3, 8, 0), (3, 0, 8), (-1, 0, 0)]:
        with pytest.raises(ValueError, match="No tile"):
            tile_sql(layer(), *bad)
    with pytest.raises(ValueError):
        tile_sql(TileLayer('x"; DROP', 4326, 1), 0, 0, 0)


def test_versions_give_their_own_features(db: Conn) -> None:
    create_layer(db, "landsd_dense", fields=FIELDS)
    feats = random_feats(300)
    add_version(db, "landsd_dense", feats)
    renamed = [
        Feat(f.key, {**f.props, "NAME_TC": "新" + str(f.props["NAME_TC"])}, f.wkt)
        for f in feats[:100]
    ]
    add_version(db, "landsd_dense", renamed)  # the other 200 vanish
    tile = tile_of(*CENTRAL, 13)
    one = decode(render_vector_tile(layer(("NAME_TC",), 1), *tile), "landsd_dense")
    two = decode(render_vector_tile(layer(("NAME_TC",), 2), *tile), "landsd_dense")
    v1, v2 = stored(db, "landsd_dense", 1), stored(db, "landsd_dense", 2)
    assert set(one) <= set(v1) and set(two) <= set(v2)
    assert not set(one) & set(two)  # every feature changed or vanished
    assert len(two) < len(one)
    assert all(f["properties"]["NAME_TC"].startswith("新大廈") for f in two.values())
    assert not any(f["properties"]["NAME_TC"].startswith("新") for f in one.values())


def test_low_zoom_drops_specks_and_simplifies_within_a_pixel(db: Conn) -> None:
    create_layer(db, "landsd_dense", fields=[("NAME_EN", "text")])
    lon0, lat0 = CENTRAL[0], CENTRAL[1] + 0.04  # all inside the z11 tile
    ring = [
        (lon0 + 0.02 * math.cos(a) * (1 + 0.02 * math.sin(9 * a)),
         lat0 + 0.018 * math.sin(a) * (1 + 0.02 * math.sin(9 * a)))
        for a in (2 * math.pi * k / 2000 for k in range(2000))
    ]  # fmt: skip
    island = shapely.Polygon(ring)
    coast = shapely.LineString(
        [
            (lon0 - 0.05 + k * 0.0001, lat0 - 0.025 + 0.0005 * math.sin(k / 3))
            for k in range(1000)
        ]
    )
    speck = box(lon0 + 0.03, lat0, lon0 + 0.03001, lat0 + 0.00001)  # ~1 m
    point = shapely.Point(lon0 + 0.031, lat0)
    feats = [
        Feat(key, {"NAME_EN": key}, g.wkt)
        for key, g in (
            ("island", island),
            ("coast", coast),
            ("speck", speck),
            ("point", point),
        )
    ]
    add_version(db, "landsd_dense", feats)
    features = stored(db, "landsd_dense", 1)
    by_key = {key: fid for fid, (_, key) in features.items()}
    z = 11
    tile = tile_of(lon0, lat0, z)
    got = decode(render_vector_tile(layer(("NAME_EN",)), *tile), "landsd_dense")
    keys = {f["properties"]["NAME_EN"] for f in got.values()}
    assert keys == {"island", "coast", "point"}  # the 1 m speck is gone
    pixel = EXTENT / 512 * unit(z)
    for name in ("island", "coast"):
        fid = by_key[name]
        mine = to_merc(got[fid], *tile)
        theirs = merc(features[fid][0]).intersection(buffered(tile))
        # Simplified: fewer vertices, but within about a pixel of the shape.
        assert (
            len(shapely.get_coordinates(mine))
            < len(shapely.get_coordinates(theirs)) / 3
        )
        assert mine.hausdorff_distance(theirs) <= 1.5 * pixel
    # From EXACT_ZOOM on, the speck is there.
    deep = tile_of(lon0 + 0.030005, lat0 + 0.000005, EXACT_ZOOM)
    got = decode(render_vector_tile(layer(("NAME_EN",)), *deep), "landsd_dense")
    assert {f["properties"]["NAME_EN"] for f in got.values()} >= {"speck"}


def test_projected_storage_crs(db: Conn) -> None:
    """A layer stored in EPSG:2326 (HK 1980 Grid) is transformed by PostGIS."""
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    feats = random_feats(400, seed=3)
    grid = [
        Feat(f.key, f.props, shapely.transform(
            shapely.from_wkt(f.wkt),
            lambda xy: _stack(to_grid.transform(xy[:, 0], xy[:, 1])),
        ).wkt)
        for f in feats
    ]  # fmt: skip
    create_layer(db, "landsd_grid", fields=FIELDS, srid=2326)
    add_version(db, "landsd_grid", grid)
    features = stored(db, "landsd_grid", 1)
    for z in (12, EXACT_ZOOM):
        tile = tile_of(*CENTRAL, z)
        data = render_vector_tile(TileLayer("landsd_grid", 2326, 1, (), "g"), *tile)
        got = decode(data, "g")
        if z >= EXACT_ZOOM:
            # PostGIS and pyproj may pick transformations a metre apart.
            grow = 1.5 / unit(z)
            assert expected_ids(features, tile, -grow) <= set(got)
            assert set(got) <= expected_ids(features, tile, grow)
        for fid, feature in got.items():
            mine = to_merc(feature, *tile)
            theirs = merc(features[fid][0]).intersection(buffered(tile))
            pixel = EXTENT / 512 * unit(z)
            assert mine.hausdorff_distance(theirs) < 3 + 1.5 * pixel


def test_geometry_type(dense: dict[int, tuple[BaseGeometry, str]]) -> None:
    assert geometry_type("landsd_dense", 4326, 1) in {"POLYGON", "LINESTRING"}
    assert geometry_type("landsd_dense", 4326, 0) is None  # no feature


def test_query_plan_uses_the_spatial_index(db: Conn) -> None:
    """On 20,000 polygons a tile reads the GIST index, not the whole table."""
    create_layer(db, "landsd_many", fields=[("NAME_EN", "text")])
    table = sql.Identifier("sdi_data", "landsd_many")
    db.execute(
        sql.SQL(
            'INSERT INTO {} (_sdi_key, _sdi_hash, _sdi_from, _sdi_geom, "NAME_EN") '
            "SELECT 'k' || i, md5(i::text)::uuid, 1, ST_MakeEnvelope("
            "113.9 + (i % 200) * 0.002, 22.2 + (i / 200) * 0.002,"
            "113.9 + (i % 200) * 0.002 + 0.0003, 22.2 + (i / 200) * 0.002 + 0.0003,"
            " 4326), 'n' || i FROM generate_series(0, 19999) AS i"
        ).format(table)
    )
    db.execute(sql.SQL("CREATE INDEX ON {} USING gist (_sdi_geom)").format(table))
    db.execute(sql.SQL("ANALYZE {}").format(table))
    for z in (12, 14, 16):
        statement, params = tile_sql(
            TileLayer("landsd_many", 4326, 1, ("NAME_EN",), "m"), *tile_of(*CENTRAL, z)
        )
        plan = "\n".join(
            r[0]
            for r in db.execute(
                sql.SQL("EXPLAIN ") + statement, params, prepare=False
            ).fetchall()
        )
        assert "landsd_many__sdi_geom_idx" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_tiles_of_specks_only_are_empty_without_a_query(
    dense: dict[int, tuple[BaseGeometry, str]], db: Conn
) -> None:
    largest = largest_feature("landsd_dense", 1)
    assert largest is not None
    widest = max(
        max(g.bounds[2] - g.bounds[0], g.bounds[3] - g.bounds[1])
        for g, _ in dense.values()
    )
    assert largest == pytest.approx(widest, rel=1e-5)
    for z in range(8, EXACT_ZOOM + 1):
        tile = tile_of(*CENTRAL, z)
        plain = render_vector_tile(layer(("NAME_EN",)), *tile)
        known = TileLayer(
            "landsd_dense", 4326, 1, ("NAME_EN",), "landsd_dense", largest
        )
        assert render_vector_tile(known, *tile) == plain, z
        if z <= 9:
            assert plain is None  # 120 m at most: below a pixel
    # Without a table to ask, the answer can only come from the shortcut.
    gone = TileLayer("no_such_table", 4326, 1, (), "x", largest)
    assert render_vector_tile(gone, *tile_of(*CENTRAL, 9)) is None
    # Points are never left out: no shortcut for layers holding some.
    create_layer(db, "landsd_points", fields=[("NAME_EN", "text")])
    add_version(db, "landsd_points", [Feat("p", {"NAME_EN": "p"}, "POINT(114.1 22.3)")])
    assert largest_feature("landsd_points", 1) is None
