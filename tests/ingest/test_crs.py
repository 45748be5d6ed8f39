"""CRS parsing, identification of Esri .prj files and the HK1980 transformation."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pyproj import CRS, Transformer

from sdi.errors import IngestError
from sdi.ingest.crs import (
    crs_label,
    identify,
    is_ballpark,
    parse_crs,
    resolve_crs,
    transformer_to,
)
from tests.ingest.files import ESRI_HK1980_PRJ

HK1980 = CRS.from_epsg(2326)

# The origin of the Hong Kong 1980 Grid (Geodetic Survey Section, Lands
# Department): E 836694.05, N 819069.80 is 22°18'43.68"N 114°10'42.80"E on
# the HK1980 datum. The Survey's rule of thumb to WGS 84 (-5.5" in latitude,
# +8.8" in longitude) puts it at 22°18'38.18"N 114°10'51.60"E, to about 1 m.
ORIGIN_EN = (836694.05, 819069.80)
ORIGIN_WGS84 = (114 + 10 / 60 + 51.60 / 3600, 22 + 18 / 60 + 38.18 / 3600)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two lon/lat points near Hong Kong (equirectangular)."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = math.radians(a[0] - b[0]) * math.cos(lat) * 6_378_137
    dy = math.radians(a[1] - b[1]) * 6_378_137
    return math.hypot(dx, dy)


def _operations(node: Any) -> list[tuple[str, Any]]:
    """(name, id) of every transformation step in a PROJJSON operation."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Transformation":
            found.append((node["name"], node.get("id")))
        for value in node.values():
            found += _operations(value)
    elif isinstance(node, list):
        for value in node:
            found += _operations(value)
    return found


@pytest.mark.parametrize(
    "text",
    ["EPSG:2326", "epsg:2326", "2326", " 2326 ", "urn:ogc:def:crs:EPSG::2326"],
)
def test_parse_epsg_forms(text: str) -> None:
    crs = parse_crs(text)
    assert crs.to_epsg() == 2326
    assert crs_label(crs) == "EPSG:2326"


def test_parse_esri_wkt_identifies_epsg_2326() -> None:
    crs = parse_crs(ESRI_HK1980_PRJ)
    assert crs_label(crs) == "EPSG:2326"
    assert crs == HK1980


@pytest.mark.parametrize("text", ["EPSG:99999", "nonsense", "PROJCS[broken"])
def test_unknown_crs_is_a_clear_error(text: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_crs(text)
    assert caught.value.message.startswith(f"Unknown or unreadable CRS {text!r}")
    assert "--crs EPSG:2326" in caught.value.message


def test_empty_crs_is_an_error() -> None:
    with pytest.raises(IngestError, match="An empty CRS was given"):
        parse_crs("  ")


def test_identify_crs84_as_4326() -> None:
    assert identify(CRS.from_user_input("OGC:CRS84")).to_epsg() == 4326


def test_an_unidentifiable_crs_is_labelled_by_wkt() -> None:
    custom = CRS.from_proj4("+proj=tmerc +lat_0=22 +lon_0=114 +k=0.9996 +ellps=GRS80")
    crs = identify(custom)
    assert crs_label(crs).startswith("PROJCRS[")


def test_a_file_without_crs_is_refused() -> None:
    with pytest.raises(IngestError) as caught:
        resolve_crs("", what="roads.shp")
    assert caught.value.message == (
        "roads.shp has no coordinate reference system (for a Shapefile: no .prj "
        "file). Pass the CRS its coordinates are in, e.g. --crs EPSG:2326 for "
        "Hong Kong 1980 Grid or --crs EPSG:4326 for longitude/latitude (WGS 84)."
    )


def test_a_file_without_crs_takes_the_users() -> None:
    crs, warnings = resolve_crs(None, override="EPSG:2326", what="roads.shp")
    assert crs == HK1980
    assert warnings == []


def test_the_users_crs_overrides_the_files_with_a_warning() -> None:
    crs, warnings = resolve_crs(
        CRS.from_epsg(4326).to_wkt(), override="2326", what="roads.shp"
    )
    assert crs == HK1980
    assert warnings == [
        "roads.shp says its CRS is EPSG:4326; using the given EPSG:2326 instead."
    ]


def test_the_same_crs_given_again_is_no_warning() -> None:
    crs, warnings = resolve_crs(ESRI_HK1980_PRJ, override="EPSG:2326")
    assert crs == HK1980
    assert warnings == []


def test_an_unreadable_file_crs_is_an_error() -> None:
    with pytest.raises(IngestError, match="coordinate reference system PROJ cannot"):
        resolve_crs('PROJCS["nonsense"]', what="x.shp")


def test_hk1980_to_wgs84_uses_epsg_1825() -> None:
    transformer = transformer_to(HK1980, 4326)
    assert transformer is not None
    assert _operations(transformer.to_json_dict()) == [
        ("Hong Kong 1980 to WGS 84 (1)", {"authority": "EPSG", "code": 1825})
    ]
    # the seven parameters, in the coordinate frame convention
    assert (
        "proj=helmert x=-162.619 y=-276.959 z=-161.764 rx=-0.067753 ry=2.243648 "
        "rz=1.158828 s=-1.094246 convention=coordinate_frame"
    ) in transformer.definition
    assert transformer.accuracy == 1.0
    assert not is_ballpark(transformer)


def test_hk1980_grid_origin_control_point() -> None:
    transformer = transformer_to(HK1980, 4326)
    assert transformer is not None
    lon, lat = transformer.transform(*ORIGIN_EN)
    assert _metres((lon, lat), ORIGIN_WGS84) < 2.0
    # Without the datum shift the point would land some 300 m away.
    ballpark = Transformer.from_crs(
        CRS.from_proj4(
            "+proj=tmerc +lat_0=22.3121333333333 +lon_0=114.178555555556 +k=1 "
            "+x_0=836694.05 +y_0=819069.8 +ellps=intl +units=m"
        ),
        4326,
        always_xy=True,
    )
    assert is_ballpark(ballpark)
    assert _metres(ballpark.transform(*ORIGIN_EN), ORIGIN_WGS84) > 200


@pytest.mark.parametrize(
    "point", [ORIGIN_EN, (833_000.0, 815_000.0), (820_000.0, 840_000.0)]
)
def test_round_trip_under_a_millimetre(point: tuple[float, float]) -> None:
    forward = transformer_to(HK1980, 4326)
    back = transformer_to(CRS.from_epsg(4326), 2326)
    assert forward is not None
    assert back is not None
    e, n = back.transform(*forward.transform(*point))
    assert math.hypot(e - point[0], n - point[1]) < 0.001


def test_esri_prj_transforms_like_epsg_2326() -> None:
    esri, _ = resolve_crs(ESRI_HK1980_PRJ)
    a = transformer_to(esri, 4326)
    b = transformer_to(HK1980, 4326)
    assert a is not None
    assert b is not None
    assert _metres(a.transform(*ORIGIN_EN), b.transform(*ORIGIN_EN)) < 0.001


def test_no_transformer_when_already_in_the_storage_crs() -> None:
    assert transformer_to(CRS.from_epsg(4326), 4326) is None
    assert transformer_to(CRS.from_user_input("OGC:CRS84"), 4326) is None


def test_transformers_are_cached() -> None:
    assert transformer_to(HK1980, 4326) is transformer_to(CRS.from_epsg(2326), 4326)


def test_unknown_storage_crs_is_an_error() -> None:
    with pytest.raises(IngestError, match="Unknown storage CRS EPSG:99999"):
        transformer_to(HK1980, 99999)
