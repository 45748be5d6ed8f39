"""Reading real files: formats, encodings, CRSs, attribute types and bad data."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import fiona
import pytest
import shapely

from sdi.errors import IngestError, TooLargeError, UnsupportedFormatError
from sdi.ingest.read import SUPPORTED_FORMATS, open_source, pg_type_of
from sdi.ingest.source import PG_TYPES, Field, SourceInfo
from tests.ingest import files

PLACE_FIELDS = [
    Field("ID", "bigint"),
    Field("NAME_EN", "text"),
    Field("NAME_TC", "text"),
    Field("AREA_M2", "double precision"),
    Field("SURVEYED", "date"),
]


def read_all(
    path: Path, tmp_path: Path, *, size: int = 10_000, **options: Any
) -> tuple[SourceInfo, list[bytes | None], list[tuple[Any, ...]]]:
    """Open ``path`` and read every batch: (info, WKB, rows)."""
    settings = options.pop("settings", None) or files.reader_settings(tmp_path)
    wkb: list[bytes | None] = []
    rows: list[tuple[Any, ...]] = []
    with open_source(
        path, work_dir=tmp_path / "work", settings=settings, **options
    ) as source:
        for batch in source.batches(size):
            assert len(batch.wkb) == len(batch.rows)
            wkb += batch.wkb
            rows += batch.rows
        info = source.info
    return info, wkb, rows


def lonlat(wkb: bytes | None) -> tuple[float, float]:
    assert wkb is not None
    point = shapely.from_wkb(wkb)
    assert point.geom_type == "Point"
    return point.x, point.y


def assert_places(wkb: list[bytes | None], *, tolerance: float = 1e-7) -> None:
    """The points are the sample places (WGS 84), within ``tolerance`` degrees."""
    for i, w in enumerate(wkb):
        _, _, lon, lat = files.place(i)
        x, y = lonlat(w)
        assert x == pytest.approx(lon, abs=tolerance)
        assert y == pytest.approx(lat, abs=tolerance)


def place_rows(n: int = len(files.PLACES)) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(n):
        p = files.place_properties(i)
        rows.append(
            (
                p["ID"],
                p["NAME_EN"],
                p["NAME_TC"],
                p["AREA_M2"],
                dt.date.fromisoformat(p["SURVEYED"]),
            )
        )
    return rows


# -- Shapefile ------------------------------------------------------------------


def test_zipped_shapefile_in_hk1980(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path)
    info, wkb, rows = read_all(archive, tmp_path)
    assert info == SourceInfo(
        format="ESRI Shapefile",
        layer="places",
        crs="EPSG:2326",
        encoding="utf-8",
        fields=PLACE_FIELDS,
        geometry_type="Point",
        feature_count=10,
        warnings=[],
    )
    assert rows == place_rows()
    # EPSG:4326 -> 2326 (by the generator) -> 4326 (by the reader): < 1 mm.
    assert_places(wkb, tolerance=1e-8)
    assert rows[2][2] == "鰂魚涌"


def test_bare_shapefile_path(tmp_path: Path) -> None:
    shp = files.make_shapefile(tmp_path / "src", geometry="Polygon")
    info, wkb, rows = read_all(shp, tmp_path)
    assert info.geometry_type == "Polygon"
    assert rows == place_rows()
    polygon = shapely.from_wkb(wkb[0])
    assert polygon.geom_type == "Polygon"
    assert polygon.centroid.x == pytest.approx(files.PLACES[0][2], abs=1e-7)
    assert list((tmp_path / "src").iterdir())  # the user's files are untouched


def test_target_srid_keeps_hk1980_coordinates(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=3)
    _, wkb, _ = read_all(archive, tmp_path, target_srid=2326)
    for i, w in enumerate(wkb):
        assert lonlat(w) == pytest.approx(files.hk80(*files.place(i)[2:]), abs=1e-6)


@pytest.mark.parametrize("encoding", ["big5hkscs"])
def test_big5_dbf_without_cpg_comes_out_as_unicode(
    tmp_path: Path, encoding: str
) -> None:
    archive = files.make_big5_shapefile_zip(tmp_path, encoding=encoding)
    assert "places.cpg" not in zipfile.ZipFile(archive).namelist()
    info, _, rows = read_all(archive, tmp_path)
    assert info.encoding == "big5hkscs"
    assert [r[2] for r in rows] == [p[1] for p in files.PLACES]
    assert "鴨脷洲" in [r[2] for r in rows]
    assert info.warnings == [
        "the text encoding was guessed as big5hkscs; if names look wrong, upload "
        "again choosing the encoding."
    ]


def test_plain_big5_with_a_language_driver_byte(tmp_path: Path) -> None:
    archive = files.make_big5_shapefile_zip(tmp_path, encoding="cp950", ldid=0x78)
    info, _, rows = read_all(archive, tmp_path)
    assert info.encoding == "cp950"
    assert info.warnings == []
    expected = [p[1] for p in files.PLACES if "鰂" not in p[1] and "脷" not in p[1]]
    assert [r[2] for r in rows] == expected


def test_the_users_encoding_wins(tmp_path: Path) -> None:
    archive = files.make_big5_shapefile_zip(tmp_path)
    info, _, rows = read_all(archive, tmp_path, encoding="Big5-HKSCS")
    assert info.encoding == "big5hkscs"
    assert info.warnings == []
    assert rows[0][2] == "中環"


def test_shapefile_without_prj_needs_a_crs(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, with_prj=False)
    with pytest.raises(IngestError) as caught:
        read_all(archive, tmp_path)
    assert caught.value.message.startswith(
        "places.shp has no coordinate reference system (for a Shapefile: no .prj "
        "file). Pass the CRS its coordinates are in, e.g. --crs EPSG:2326"
    )
    info, wkb, _ = read_all(archive, tmp_path, crs="EPSG:2326")
    assert info.crs == "EPSG:2326"
    assert_places(wkb, tolerance=1e-8)


def test_esri_prj_is_recorded_as_epsg_2326(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, prj_text=files.ESRI_HK1980_PRJ)
    info, wkb, _ = read_all(archive, tmp_path)
    assert info.crs == "EPSG:2326"
    assert_places(wkb, tolerance=1e-8)


def test_a_given_crs_overrides_the_prj_with_a_warning(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=2)
    info, _, _ = read_all(archive, tmp_path, crs="EPSG:2326")
    assert info.warnings == []
    with pytest.raises(IngestError, match="not valid in EPSG:4326"):
        # HK1980 numbers read as degrees are far outside -90..90.
        read_all(archive, tmp_path, crs="4326")


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            ".dbf",
            "The Shapefile places.shp is missing places.dbf (its attribute table)",
        ),
        (".shx", "The Shapefile places.shp is missing places.shx (its index)"),
    ],
)
def test_a_shapefile_missing_a_part(tmp_path: Path, missing: str, message: str) -> None:
    archive = files.make_shapefile_zip(tmp_path, omit=[missing])
    with pytest.raises(IngestError) as caught:
        read_all(archive, tmp_path)
    assert caught.value.message.startswith(message)
    assert "upload them together in one zip" in caught.value.message


def test_a_shapefile_missing_its_shp(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, omit=[".shp"])
    with pytest.raises(IngestError) as caught:
        read_all(archive, tmp_path)
    assert caught.value.message == (
        "places.zip holds a Shapefile without its .shp file (found places.dbf, "
        "places.shx); put the .shp, .shx, .dbf and .prj files in the zip together."
    )


def test_shapefile_parts_with_mixed_case_extensions(tmp_path: Path) -> None:
    shp = files.make_shapefile(tmp_path / "src", n=3)
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in files.shapefile_parts(shp):
            ext = part.suffix.upper() if part.suffix == ".dbf" else part.suffix
            zf.write(part, "Places" + (ext.title() if ext == ".shx" else ext))
    assert sorted(zipfile.ZipFile(archive).namelist()) == [
        "Places.DBF",
        "Places.Shx",
        "Places.cpg",
        "Places.prj",
        "Places.shp",
    ]
    _, _, rows = read_all(archive, tmp_path)
    assert rows == place_rows(3)


def test_a_truncated_shp_fails_with_the_feature_number(tmp_path: Path) -> None:
    archive = files.make_truncated_shapefile_zip(tmp_path, n=25)
    with pytest.raises(IngestError) as caught:
        read_all(archive, tmp_path, size=4)
    assert caught.value.message.startswith(
        "Feature 25 of truncated.shp could not be read: Error in fread()"
    )
    assert caught.value.message.endswith(
        "The file is probably damaged or truncated; nothing was loaded."
    )


def test_an_impossible_date_becomes_none_with_a_warning(tmp_path: Path) -> None:
    shp = files.make_shapefile(tmp_path / "src", n=5)
    dbf = shp.with_suffix(".dbf")
    raw = dbf.read_bytes()
    dbf.write_bytes(
        raw.replace(b"20200102", b"00000000").replace(b"20200104", b"20201340")
    )
    info, wkb, rows = read_all(shp, tmp_path)
    assert [r[4] for r in rows] == [
        dt.date(2020, 1, 1),
        None,
        dt.date(2020, 1, 3),
        None,
        dt.date(2020, 1, 5),
    ]
    assert rows[3][:4] == (4, "Sha Tin", "沙田", 1603.0)
    assert len(wkb) == 5
    assert wkb[3] is not None
    assert info.warnings == [
        "1 feature(s) have an impossible date or time (features 4); their date "
        "and time fields were stored empty."
    ]


# -- GeoPackage -------------------------------------------------------------------


def test_geopackage_with_several_layers_needs_a_choice(tmp_path: Path) -> None:
    gpkg = files.make_geopackage(tmp_path)
    with pytest.raises(IngestError) as caught:
        read_all(gpkg, tmp_path)
    assert caught.value.message == (
        "data.gpkg has several layers: places, districts. Choose one with "
        "--source-layer NAME."
    )
    info, wkb, rows = read_all(gpkg, tmp_path, layer="districts")
    assert (info.format, info.layer, info.geometry_type) == (
        "GPKG",
        "districts",
        "Polygon",
    )
    assert info.fields == PLACE_FIELDS
    assert rows == place_rows()
    assert shapely.from_wkb(wkb[0]).geom_type == "Polygon"
    info, _, _ = read_all(gpkg, tmp_path, layer="PLACES")
    assert info.layer == "places"


def test_a_table_without_geometry_is_refused(tmp_path: Path) -> None:
    gpkg = tmp_path / "table.gpkg"
    schema = {"geometry": "None", "properties": {"name": "str"}}
    with fiona.open(gpkg, "w", driver="GPKG", schema=schema, layer="codes") as dst:
        dst.write({"geometry": None, "properties": {"name": "a"}})
    with pytest.raises(IngestError) as caught:
        read_all(gpkg, tmp_path)
    assert caught.value.message == (
        "table.gpkg has no geometry column; sdi publishes spatial layers only."
    )


def test_a_layer_name_for_a_one_layer_file_is_only_a_warning(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=1)
    info, _, _ = read_all(archive, tmp_path, layer="roads")
    assert info.layer == "places"
    assert info.warnings == [
        "Layer 'roads' was asked for, but places.shp holds one layer, 'places'; "
        "that was read."
    ]


def test_geopackage_unknown_layer(tmp_path: Path) -> None:
    gpkg = files.make_geopackage(tmp_path)
    with pytest.raises(IngestError) as caught:
        read_all(gpkg, tmp_path, layer="roads")
    assert caught.value.message == (
        "data.gpkg has no layer 'roads'; its layers are: places, districts."
    )


def test_attribute_names_are_kept_exactly(tmp_path: Path) -> None:
    names = {
        "select": "str",
        'say "hi"': "str",
        "it's": "str",
        "with space": "str",
        "名稱": "str",
        "Order": "int",
    }
    row: dict[str, Any] = dict(zip(names, ["a", "b", "c", "d", "中環", 7], strict=True))
    gpkg = files.make_geopackage_fields(tmp_path, names, [row])
    info, _, rows = read_all(gpkg, tmp_path)
    assert [f.name for f in info.fields] == list(names)
    assert rows == [("a", "b", "c", "d", "中環", 7)]


def test_attribute_types_become_python_values(tmp_path: Path) -> None:
    # No date field here: fiona 1.10 cannot write a date and a datetime field
    # in one layer (it uses one's setter for the other). Dates: see Shapefiles.
    types = {"n64": "int64", "flag": "bool", "when": "datetime", "ratio": "float"}
    rows_in: list[dict[str, Any]] = [
        {"n64": 2**40, "flag": True, "when": "2020-01-02T03:04:05", "ratio": 0.25},
        {"n64": None, "flag": None, "when": None, "ratio": None},
    ]
    gpkg = files.make_geopackage_fields(tmp_path, types, rows_in)
    info, _, rows = read_all(gpkg, tmp_path)
    assert info.fields == [
        Field("n64", "bigint"),
        Field("flag", "boolean"),
        Field("when", "timestamp"),
        Field("ratio", "double precision"),
    ]
    assert rows == [
        (2**40, True, dt.datetime(2020, 1, 2, 3, 4, 5), 0.25),
        (None, None, None, None),
    ]


@pytest.mark.parametrize(
    ("fiona_type", "pg_type"),
    [
        ("str:80", "text"),
        ("int", "bigint"),
        ("int32", "bigint"),
        ("int64", "bigint"),
        ("int:10", "bigint"),
        ("float:24.15", "double precision"),
        ("bool", "boolean"),
        ("date", "date"),
        ("datetime", "timestamp"),
        ("time", "time"),
        ("bytes", "text"),
        ("List[str]", "text"),
    ],
)
def test_fiona_types_map_to_pg_types(fiona_type: str, pg_type: str) -> None:
    assert pg_type_of(fiona_type) == pg_type
    assert pg_type in PG_TYPES


# -- GeoJSON ------------------------------------------------------------------------


def test_geojson(tmp_path: Path) -> None:
    path = files.make_geojson(tmp_path)
    info, wkb, rows = read_all(path, tmp_path)
    assert (info.format, info.crs, info.encoding, info.feature_count) == (
        "GeoJSON",
        "EPSG:4326",
        None,
        10,
    )
    assert info.fields == PLACE_FIELDS
    assert rows == place_rows()
    assert_places(wkb, tolerance=0)


def test_geojson_with_a_json_extension_in_a_zip_folder(tmp_path: Path) -> None:
    path = files.make_geojson(tmp_path, n=3)
    renamed = path.rename(tmp_path / "places.json")
    archive = files.zip_files(tmp_path / "upload.zip", [renamed], prefix="export/")
    _, wkb, rows = read_all(archive, tmp_path)
    assert rows == place_rows(3)
    assert_places(wkb, tolerance=0)


def test_time_and_zoned_timestamps(tmp_path: Path) -> None:
    path = files.write_geojson(
        tmp_path / "times.geojson",
        [
            files.geojson_feature(
                {"type": "Point", "coordinates": [114.1, 22.3]},
                {"opens": "08:30:00", "seen": "2020-01-02T08:00:00+08:00"},
            )
        ],
    )
    info, _, rows = read_all(path, tmp_path)
    assert info.fields == [Field("opens", "time"), Field("seen", "timestamp")]
    # A zoned timestamp is stored in UTC.
    assert rows == [(dt.time(8, 30), dt.datetime(2020, 1, 2, 0, 0))]


def test_null_empty_and_3d_geometries(tmp_path: Path) -> None:
    path = files.write_geojson(
        tmp_path / "odd.geojson",
        [
            files.geojson_feature(
                {"type": "Point", "coordinates": [114.1, 22.3, 55.0]}, {"k": 1}
            ),
            files.geojson_feature(None, {"k": 2}),
            files.geojson_feature({"type": "Point", "coordinates": []}, {"k": 3}),
            files.geojson_feature(
                {
                    "type": "MultiPoint",
                    "coordinates": [[114.2, 22.4, 1], [114.3, 22.5, 2]],
                },
                {"k": 4},
            ),
        ],
    )
    _, wkb, rows = read_all(path, tmp_path)
    assert rows == [(1,), (2,), (3,), (4,)]
    assert wkb[1] is None
    assert wkb[2] is None
    first, last = shapely.from_wkb(wkb[0]), shapely.from_wkb(wkb[3])
    assert not first.has_z
    assert (first.x, first.y) == (114.1, 22.3)
    assert wkb[0] == shapely.to_wkb(shapely.Point(114.1, 22.3), flavor="iso")
    assert last.geom_type == "MultiPoint"
    assert not last.has_z


def test_polygons_and_multipolygons_mix_fine(tmp_path: Path) -> None:
    square = files.place_geometry(0, crs="EPSG:4326", geometry="Polygon")
    multi = {"type": "MultiPolygon", "coordinates": [square["coordinates"]]}
    path = files.write_geojson(
        tmp_path / "polys.geojson",
        [
            files.geojson_feature(square, {"k": 1}),
            files.geojson_feature(multi, {"k": 2}),
        ],
    )
    _, wkb, _ = read_all(path, tmp_path)
    assert [shapely.from_wkb(w).geom_type for w in wkb] == ["Polygon", "MultiPolygon"]


def test_irregular_coordinates_take_the_slow_path(tmp_path: Path) -> None:
    # A ring mixing 2D and 3D positions, and a geometry collection: neither
    # fits the flat arrays, both must still come out right.
    ring = [[114.1, 22.3], [114.2, 22.3, 5.0], [114.2, 22.4], [114.1, 22.3]]
    square = files.place_geometry(0, crs="EPSG:4326", geometry="Polygon")
    path = files.write_geojson(
        tmp_path / "irregular.geojson",
        [
            files.geojson_feature(square, {"k": 1}),
            files.geojson_feature({"type": "Polygon", "coordinates": [ring]}, {"k": 2}),
            files.geojson_feature(square, {"k": 3}),
        ],
    )
    _, wkb, _ = read_all(path, tmp_path)
    odd = shapely.from_wkb(wkb[1])
    assert not odd.has_z
    assert list(odd.exterior.coords) == [(x, y) for x, y, *_ in ring]
    assert shapely.from_wkb(wkb[0]).equals(shapely.from_wkb(wkb[2]))


def test_a_geometry_collection_among_points_is_mixing(tmp_path: Path) -> None:
    point = {"type": "Point", "coordinates": [114.1, 22.3]}
    collection = {"type": "GeometryCollection", "geometries": [point]}
    path = files.write_geojson(
        tmp_path / "gc.geojson",
        [files.geojson_feature(point, {}), files.geojson_feature(collection, {})],
    )
    with pytest.raises(IngestError, match=r"GeometryCollection \(first at feature 2\)"):
        read_all(path, tmp_path)


def test_invalid_geometries_are_kept_not_repaired(tmp_path: Path) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
    }
    path = files.write_geojson(
        tmp_path / "bowtie.geojson", [files.geojson_feature(bowtie, {"k": 1})]
    )
    _, wkb, _ = read_all(path, tmp_path)
    polygon = shapely.from_wkb(wkb[0])
    assert not polygon.is_valid
    assert list(polygon.exterior.coords) == [(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)]


def test_unbuildable_geometries_become_none_with_a_warning(tmp_path: Path) -> None:
    good = {"type": "LineString", "coordinates": [[114.1, 22.3], [114.2, 22.4]]}
    one_point = {"type": "LineString", "coordinates": [[114.1, 22.3]]}
    path = files.write_geojson(
        tmp_path / "lines.geojson",
        [
            files.geojson_feature(good, {"k": 1}),
            files.geojson_feature(one_point, {"k": 2}),
            files.geojson_feature(good, {"k": 3}),
        ],
    )
    info, wkb, rows = read_all(path, tmp_path)
    assert rows == [(1,), (2,), (3,)]
    assert wkb[1] is None
    assert shapely.from_wkb(wkb[0]).equals(shapely.from_wkb(wkb[2]))
    assert (
        "1 geometry(ies) could not be built and were stored empty (features 2)."
        in info.warnings
    )


def test_a_corrupt_record_near_the_end(tmp_path: Path) -> None:
    path = files.make_bad_geojson(tmp_path, n=8)
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path, size=3)
    assert caught.value.message.startswith(
        "Feature 8 of bad.geojson could not be read: Invalid 'x' coordinate."
    )


def test_mixed_geometry_types_are_refused(tmp_path: Path) -> None:
    path = files.make_mixed_geojson(tmp_path)
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message == (
        "mixed.geojson mixes geometry types: Point (first at feature 1), Polygon "
        "(first at feature 3), LineString (first at feature 4). A layer holds one "
        "kind of geometry (points, lines or polygons); split the file by geometry "
        "type and upload each part as its own layer."
    )


def test_mixed_types_across_batches_are_refused(tmp_path: Path) -> None:
    features = [
        files.geojson_feature(
            files.place_geometry(i, crs="EPSG:4326", geometry="Point"), {}
        )
        for i in range(5)
    ]
    features.append(
        files.geojson_feature(
            files.place_geometry(5, crs="EPSG:4326", geometry="LineString"), {}
        )
    )
    path = files.write_geojson(tmp_path / "late.geojson", features)
    with pytest.raises(IngestError, match=r"LineString \(first at feature 6\)"):
        read_all(path, tmp_path, size=2)


def test_reserved_and_case_duplicate_names_are_refused(tmp_path: Path) -> None:
    point = {"type": "Point", "coordinates": [114.1, 22.3]}
    reserved = files.write_geojson(
        tmp_path / "reserved.geojson",
        [files.geojson_feature(point, {"name": "a", "_SDI_version": 1})],
    )
    with pytest.raises(IngestError) as caught:
        read_all(reserved, tmp_path)
    assert caught.value.message == (
        "reserved.geojson has attribute(s) named '_SDI_version': names starting "
        "with '_sdi_' are reserved for sdi. Rename them and upload again."
    )
    twins = files.write_geojson(
        tmp_path / "twins.geojson",
        [files.geojson_feature(point, {"Name": "a", "NAME": "b"})],
    )
    with pytest.raises(IngestError) as caught:
        read_all(twins, tmp_path)
    assert caught.value.message == (
        "twins.geojson has attributes 'Name' and 'NAME', which differ only in "
        "letter case; GIS clients cannot tell them apart. Rename one and upload "
        "again."
    )


def test_hk1980_numbers_declared_as_wgs84_are_caught(tmp_path: Path) -> None:
    point = {"type": "Point", "coordinates": [836694.05, 819069.8]}
    path = files.write_geojson(
        tmp_path / "wrong.geojson",
        [
            files.geojson_feature({"type": "Point", "coordinates": [114.1, 22.3]}, {}),
            files.geojson_feature(point, {}),
        ],
    )
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message.startswith(
        "Feature 2 of wrong.geojson has coordinates (836694, 819070, 836694, "
        "819070) that are not valid in EPSG:4326"
    )
    assert "--crs EPSG:2326" in caught.value.message


def test_a_file_without_features_is_refused(tmp_path: Path) -> None:
    path = files.write_geojson(tmp_path / "none.geojson", [])
    with pytest.raises(IngestError, match=r"none\.geojson"):
        read_all(path, tmp_path)


# -- CSV ----------------------------------------------------------------------------


def test_csv_with_lon_lat(tmp_path: Path) -> None:
    path = files.make_csv(tmp_path)
    info, wkb, rows = read_all(path, tmp_path)
    assert info == SourceInfo(
        format="CSV",
        layer="places",
        crs="EPSG:4326",
        encoding="utf-8",
        fields=[Field("name_en", "text"), Field("name_tc", "text")],
        geometry_type="Point",
        feature_count=10,
        warnings=[],
    )
    assert rows == [(p[0], p[1]) for p in files.PLACES]
    assert_places(wkb, tolerance=1e-6)


@pytest.mark.parametrize(
    "columns",
    [
        ("Name", "名稱", "Easting", "Northing"),
        ("Name", "名稱", "E", "N"),
        ("Name", "名稱", "x", "y"),
    ],
)
def test_csv_with_hk1980_easting_northing(
    tmp_path: Path, columns: tuple[str, ...]
) -> None:
    path = files.make_csv(tmp_path, columns=columns, coordinates="hk1980")
    info, wkb, rows = read_all(path, tmp_path)
    assert info.crs == "EPSG:2326"
    assert [f.name for f in info.fields] == ["Name", "名稱"]
    assert rows[0] == ("Central", "中環")
    assert_places(wkb, tolerance=1e-7)


def test_csv_x_y_in_degrees_is_wgs84(tmp_path: Path) -> None:
    path = files.make_csv(tmp_path, columns=("a", "b", "X", "Y"))
    info, wkb, _ = read_all(path, tmp_path)
    assert info.crs == "EPSG:4326"
    assert_places(wkb, tolerance=1e-6)


def test_csv_chosen_coordinate_columns(tmp_path: Path) -> None:
    path = files.make_csv(
        tmp_path, columns=("a", "b", "X_COORD", "Y_COORD"), coordinates="hk1980"
    )
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message == (
        "places.csv has no coordinate columns (its columns are: a, b, X_COORD, "
        "Y_COORD). Name them lon and lat (WGS 84) or easting and northing (Hong "
        "Kong 1980 Grid), or choose them with --x-field and --y-field."
    )
    info, wkb, _ = read_all(path, tmp_path, x_field="x_coord", y_field="Y_COORD")
    assert info.crs == "EPSG:2326"
    assert [f.name for f in info.fields] == ["a", "b"]
    assert_places(wkb, tolerance=1e-7)
    with pytest.raises(IngestError, match=r"places\.csv has no column 'east'"):
        read_all(path, tmp_path, x_field="east", y_field="Y_COORD")


def test_csv_types_are_inferred_keeping_codes_as_text(tmp_path: Path) -> None:
    n = 4
    path = files.make_csv(
        tmp_path,
        n=n,
        extra={
            "code": ["001", "002", "010", ""],
            "count": ["1", "-20", "", "300"],
            "ratio": ["0.5", "2", "1e3", ""],
            "opened": ["2020-01-02", "1999-12-31", "", "2021-02-28"],
            "open": ["true", "false", "", "TRUE"],
            "stamp": ["2020-01-02 03:04:05", "2020-01-02T03:04", "", ""],
        },
    )
    info, _, rows = read_all(path, tmp_path)
    assert info.fields == [
        Field("name_en", "text"),
        Field("name_tc", "text"),
        Field("code", "text"),
        Field("count", "bigint"),
        Field("ratio", "double precision"),
        Field("opened", "date"),
        Field("open", "boolean"),
        Field("stamp", "timestamp"),
    ]
    assert rows[0][2:] == (
        "001",
        1,
        0.5,
        dt.date(2020, 1, 2),
        True,
        dt.datetime(2020, 1, 2, 3, 4, 5),
    )
    assert rows[2][2:] == ("010", None, 1000.0, None, None, None)
    assert rows[3][2:] == (None, 300, None, dt.date(2021, 2, 28), True, None)


def test_big5_csv(tmp_path: Path) -> None:
    path = files.make_csv(tmp_path, encoding="big5hkscs")
    info, _, rows = read_all(path, tmp_path)
    assert info.encoding == "big5hkscs"
    assert [r[1] for r in rows] == [p[1] for p in files.PLACES]


def test_csv_rows_with_bad_or_missing_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "name,lon,lat\nCentral,114.1588,22.2816\nNowhere,,\nBroken,abc,22.3\n"
    )
    info, wkb, rows = read_all(path, tmp_path)
    assert rows == [("Central",), ("Nowhere",), ("Broken",)]
    assert wkb[1] is None
    assert wkb[2] is None
    assert lonlat(wkb[0]) == (114.1588, 22.2816)
    assert info.warnings == [
        "1 row(s) have coordinates that are not numbers; they were stored without "
        "a geometry."
    ]


def test_csv_coordinates_of_unknown_crs(tmp_path: Path) -> None:
    path = tmp_path / "far.csv"
    path.write_text("name,x,y\nSomewhere,500000,4000000\n")
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message == (
        "far.csv: the coordinates (x from 500000 to 500000, y from 4e+06 to "
        "4e+06) are not longitude/latitude or Hong Kong 1980 Grid "
        "easting/northing. Pass the CRS they are in, e.g. --crs EPSG:2326, or "
        "check the columns."
    )
    info, wkb, _ = read_all(path, tmp_path, crs="EPSG:32650")
    assert info.crs == "EPSG:32650"
    x, y = lonlat(wkb[0])
    assert 116 < x < 118
    assert 36 < y < 37


def test_tab_separated_values(tmp_path: Path) -> None:
    path = tmp_path / "stops.tsv"
    path.write_text("name\tlon\tlat\nCentral\t114.1588\t22.2816\n")
    info, wkb, rows = read_all(path, tmp_path)
    assert (info.format, rows) == ("CSV", [("Central",)])
    assert lonlat(wkb[0]) == (114.1588, 22.2816)


def test_csv_swapped_lon_lat_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "swapped.csv"
    path.write_text("name,lat,lon\nCentral,114.1588,22.2816\n")
    with pytest.raises(IngestError, match="are not longitude/latitude"):
        read_all(path, tmp_path)


# -- File Geodatabase ----------------------------------------------------------------


def test_zipped_file_geodatabase(tmp_path: Path) -> None:
    archive = files.make_filegdb_zip(tmp_path)
    info, wkb, rows = read_all(archive, tmp_path)
    assert (info.format, info.layer, info.crs, info.geometry_type) == (
        "OpenFileGDB",
        "lots",
        "EPSG:2326",
        "MultiPolygon",
    )
    assert [f.name for f in info.fields] == ["ID", "NAME_EN", "NAME_TC", "AREA_M2"]
    assert rows[2] == (3, "Quarry Bay", "鰂魚涌", 1602.0)
    polygon = shapely.from_wkb(wkb[0])
    assert polygon.geom_type == "MultiPolygon"
    assert polygon.centroid.x == pytest.approx(files.PLACES[0][2], abs=1e-7)
    assert polygon.centroid.y == pytest.approx(files.PLACES[0][3], abs=1e-7)


def test_file_geodatabase_with_two_layers(tmp_path: Path) -> None:
    archive = files.make_filegdb_zip(
        tmp_path, layers={"lots": "Polygon", "markers": "Point"}, n=3
    )
    with pytest.raises(IngestError, match=r"survey\.gdb has several layers"):
        read_all(archive, tmp_path)
    info, wkb, _ = read_all(archive, tmp_path, layer="markers")
    assert info.layer == "markers"
    assert len(wkb) == 3


def test_file_geodatabase_folder_without_gdb_in_its_name(tmp_path: Path) -> None:
    archive = files.make_filegdb_zip(tmp_path, n=2)
    renamed = tmp_path / "renamed.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(renamed, "w") as dst:
        for member in src.infolist():
            name = member.filename.replace("survey.gdb/", "export/")
            dst.writestr(name, src.read(member))
    info, _, rows = read_all(renamed, tmp_path)
    assert (info.format, info.layer, len(rows)) == ("OpenFileGDB", "lots", 2)


# -- zips, formats and limits -------------------------------------------------------


def test_zip_with_two_shapefiles_needs_a_choice(tmp_path: Path) -> None:
    a = files.make_shapefile(tmp_path / "src", name="roads", n=2)
    b = files.make_shapefile(tmp_path / "src", name="lamps", n=3)
    archive = files.zip_files(
        tmp_path / "two.zip", files.shapefile_parts(a) + files.shapefile_parts(b)
    )
    with pytest.raises(IngestError) as caught:
        read_all(archive, tmp_path)
    assert caught.value.message == (
        "two.zip holds several datasets: lamps (Shapefile), roads (Shapefile). "
        "Choose one with --source-layer NAME, or upload them one per zip."
    )
    info, _, rows = read_all(archive, tmp_path, layer="lamps")
    assert (info.layer, len(rows)) == ("lamps", 3)


def test_a_csv_beside_a_shapefile_is_not_data(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(
        tmp_path, n=2, extra={"data_dictionary.csv": b"field,meaning\nID,id\n"}
    )
    info, _, _ = read_all(archive, tmp_path)
    assert info.format == "ESRI Shapefile"


def test_a_zip_in_a_zip(tmp_path: Path) -> None:
    inner = files.make_shapefile_zip(tmp_path, n=2)
    outer = files.zip_files(tmp_path / "outer.zip", [inner])
    _, _, rows = read_all(outer, tmp_path)
    assert rows == place_rows(2)


def test_a_zip_of_nothing_readable(tmp_path: Path) -> None:
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", b"\x00binary")
        zf.writestr("map.pdf", b"%PDF-1.4")
    with pytest.raises(UnsupportedFormatError) as caught:
        read_all(archive, tmp_path)
    assert caught.value.status == 415
    assert caught.value.message.startswith(
        "docs.zip (it holds: map.pdf, readme.txt) is not in a format sdi reads. "
        "Supported: zipped Shapefile"
    )


def test_unknown_format_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "drawing.dwg"
    path.write_bytes(b"AC1032" + bytes(100))
    with pytest.raises(UnsupportedFormatError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message == (
        "drawing.dwg is not in a format sdi reads. Supported: "
        + "; ".join(SUPPORTED_FORMATS)
        + "."
    )


def test_format_is_judged_by_content(tmp_path: Path) -> None:
    # GeoJSON saved with a misleading name is still GeoJSON...
    path = files.make_geojson(tmp_path, n=2).rename(tmp_path / "export.dat")
    info, _, _ = read_all(path, tmp_path)
    assert info.format == "GeoJSON"
    # ...and JSON that is not GeoJSON is not.
    other = tmp_path / "config.dat"
    other.write_text(json.dumps({"server": {"port": 80}}))
    with pytest.raises(UnsupportedFormatError):
        read_all(other, tmp_path)


def test_a_non_zip_named_zip(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"^notazip\.zip is not a valid zip archive"):
        read_all(files.make_fake_zip(tmp_path), tmp_path)


def test_hostile_zip_through_open_source(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="points outside the archive"):
        read_all(files.make_zip_slip(tmp_path), tmp_path)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "work" / "evil.txt").exists()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.geojson"
    path.touch()
    with pytest.raises(IngestError) as caught:
        read_all(path, tmp_path)
    assert caught.value.message == "empty.geojson is empty (0 bytes)."


def test_a_lone_dbf(tmp_path: Path) -> None:
    shp = files.make_shapefile(tmp_path / "src")
    with pytest.raises(IngestError, match="only one part of a Shapefile"):
        read_all(shp.with_suffix(".dbf"), tmp_path)


def test_upload_limit(tmp_path: Path) -> None:
    path = files.make_geojson(tmp_path)
    settings = files.reader_settings(tmp_path, max_upload_bytes=100)
    with pytest.raises(TooLargeError, match="over the limit of 100 bytes"):
        read_all(path, tmp_path, settings=settings)


def test_the_work_directory_is_cleaned_up(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path)
    read_all(archive, tmp_path)
    with pytest.raises(IngestError):
        read_all(files.make_shapefile_zip(tmp_path, name="x", with_prj=False), tmp_path)
    assert list((tmp_path / "work").iterdir()) == []


def test_batches_have_the_asked_size(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=25)
    settings = files.reader_settings(tmp_path)
    with open_source(archive, work_dir=tmp_path / "w", settings=settings) as source:
        sizes = [len(b.rows) for b in source.batches(10)]
    assert sizes == [10, 10, 5]


def test_stopping_early_closes_cleanly(tmp_path: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, n=25)
    settings = files.reader_settings(tmp_path)
    with open_source(archive, work_dir=tmp_path / "w", settings=settings) as source:
        batches = source.batches(5)
        first = next(batches)
        batches.close()
    assert len(first.rows) == 5
    assert list((tmp_path / "w").iterdir()) == []
