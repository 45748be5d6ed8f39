"""The ingestion contract end to end, against PostGIS: each format, each bad input.

Every supported format is ingested with ``ingest_file`` into a new layer and
checked in the database: the version record, the rows with their attribute
values and types, and coordinates in the storage CRS against pyproj's own
transformation of the source coordinates. Every bad input must raise an
``SdiError`` whose message names the problem, and leave nothing behind: no
version, no table, no column, no audit entry, no file in the upload directory
or anywhere else. A few tests drive the same through ``sdi ingest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from click.testing import CliRunner, Result
from psycopg import sql
from pyproj import Transformer

from sdi import registry
from sdi.cli import cli
from sdi.errors import (
    IngestError,
    SdiError,
    TooLargeError,
    UnsupportedFormatError,
)
from sdi.ingest import ingest_file
from sdi.settings import Settings
from tests.ingest import files

Conn = psycopg.Connection[Any]
TO_WGS84 = Transformer.from_crs("EPSG:2326", "EPSG:4326", always_xy=True)
#: Degrees; about 1 cm. Ingest and this test use the same PROJ operation.
TOLERANCE = 1e-7
ALL_PLACES = tuple(range(len(files.PLACES)))
PG_TYPE_OF = {int: "bigint", float: "double precision", str: "text", dt.date: "date"}


# -- expected values ------------------------------------------------------------


def place_values(i: int) -> dict[str, Any]:
    """Attribute values of sample place i as they must come out of the database."""
    p = files.place_properties(i)
    return {**p, "SURVEYED": dt.date.fromisoformat(p["SURVEYED"])}


def gdb_values(i: int) -> dict[str, Any]:
    """The File Geodatabase sample has no date column."""
    values = place_values(i)
    del values["SURVEYED"]
    return values


def csv_extra() -> dict[str, list[str]]:
    """Extra CSV columns: an integer, a code with leading zeros, a decimal."""
    n = len(files.PLACES)
    return {
        "pop": [str(1000 * (i + 1)) for i in range(n)],
        "code": [f"{i:03d}" for i in range(n)],
        "ratio": [str(i / 4) for i in range(n)],
    }


def csv_values(i: int) -> dict[str, Any]:
    en, tc, _, _ = files.place(i)
    return {
        "name_en": en,
        "name_tc": tc,
        "pop": 1000 * (i + 1),
        "code": f"{i:03d}",
        "ratio": i / 4,
    }


def to_wgs84(geometry: shapely.Geometry) -> shapely.Geometry:
    """A Hong Kong 1980 Grid geometry in WGS 84, transformed by pyproj here."""
    return shapely.transform(geometry, TO_WGS84.transform, interleaved=False)


def hk1980_source(kind: str) -> Callable[[int], shapely.Geometry]:
    """Expected storage geometry of place i written in EPSG:2326."""

    def expected(i: int) -> shapely.Geometry:
        source = files.place_geometry(i, crs="EPSG:2326", geometry=kind)
        return to_wgs84(shapely.geometry.shape(source))

    return expected


def wgs84_source(i: int) -> shapely.Geometry:
    """Expected storage geometry of place i written in EPSG:4326 (no transform)."""
    return shapely.Point(files.place(i)[2:])


def csv_lonlat_source(i: int) -> shapely.Geometry:
    """The CSV holds longitude and latitude with six decimals."""
    _, _, lon, lat = files.place(i)
    return shapely.Point(float(f"{lon:.6f}"), float(f"{lat:.6f}"))


def csv_hk1980_source(i: int) -> shapely.Geometry:
    """The CSV holds easting and northing with three decimals."""
    e, n = files.hk80(*files.place(i)[2:])
    return to_wgs84(shapely.Point(float(f"{e:.3f}"), float(f"{n:.3f}")))


def assert_same_geometry(got: shapely.Geometry, want: shapely.Geometry) -> None:
    """Same kind (single or multi) and the same vertices to ``TOLERANCE``."""
    assert got.geom_type.removeprefix("Multi") == want.geom_type.removeprefix("Multi")
    got_xy = shapely.get_coordinates(shapely.normalize(got))
    want_xy = shapely.get_coordinates(shapely.normalize(want))
    assert got_xy.shape == want_xy.shape
    np.testing.assert_allclose(got_xy, want_xy, rtol=0, atol=TOLERANCE)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (directories: 0, 0)."""
    out: dict[str, tuple[int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[path.relative_to(root).as_posix()] = (
            (0, 0) if path.is_dir() else (info.st_size, info.st_mtime_ns)
        )
    return out


# -- database helpers -------------------------------------------------------------


@pytest.fixture
def agency(conn: Conn) -> registry.Agency:
    return registry.create_agency(conn, "landsd", "Lands Department", "地政總署")


def new_layer(
    conn: Conn, agency: registry.Agency, slug: str, *, key_column: str | None = None
) -> registry.Layer:
    return registry.create_layer(
        conn,
        agency,
        registry.LayerInput(
            slug=slug,
            title_en=slug.replace("_", " ").title(),
            licence_id=registry.get_licence(conn, "hk-csdi").id,
            key_column=key_column,
        ),
    )


def version_rows(
    conn: Conn, slug: str, number: int, columns: list[str]
) -> list[tuple[Any, ...]]:
    """Rows of version ``number``: the columns, then WKB and SRID, in file order."""
    query = sql.SQL(
        "SELECT {}, ST_AsBinary(_sdi_geom), ST_SRID(_sdi_geom) FROM {} "
        "WHERE _sdi_from <= {n} AND (_sdi_to IS NULL OR _sdi_to > {n}) "
        "ORDER BY _sdi_fid"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier("sdi_data", slug),
        n=sql.Literal(number),
    )
    return conn.execute(query).fetchall()


def column_types(conn: Conn, slug: str) -> dict[str, str]:
    """Attribute columns of ``sdi_data.<slug>`` and their types."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'sdi_data' AND table_name = %s "
        "AND column_name NOT LIKE '\\_sdi\\_%%' ORDER BY ordinal_position",
        (slug,),
    ).fetchall()
    return dict(rows)


@dataclass(frozen=True)
class State:
    """Everything a failed ingest must leave as it was."""

    layers: list[tuple[Any, ...]]
    versions: list[tuple[Any, ...]]
    audit: list[tuple[Any, ...]]
    generation: int
    tables: dict[str, dict[str, str]]
    contents: dict[str, str]
    files: dict[str, tuple[int, int]]


def state(conn: Conn, root: Path) -> State:
    layers = conn.execute(
        "SELECT slug, published_version, updated_at FROM sdi.layers ORDER BY slug"
    ).fetchall()
    versions = conn.execute(
        "SELECT layer_id, number, feature_count, diff::text FROM sdi.layer_versions "
        "ORDER BY layer_id, number"
    ).fetchall()
    audit = conn.execute(
        "SELECT id, action, object_id FROM sdi.audit_log ORDER BY id"
    ).fetchall()
    generation = conn.execute("SELECT generation FROM sdi.publication").fetchone()
    assert generation is not None
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'sdi_data' "
            "ORDER BY tablename"
        ).fetchall()
    ]
    contents = {}
    for name in names:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' "
                "ORDER BY t._sdi_fid)), '') FROM {} t"
            ).format(sql.Identifier("sdi_data", name))
        ).fetchone()
        assert row is not None
        contents[name] = str(row[0])
    return State(
        layers=layers,
        versions=versions,
        audit=audit,
        generation=int(generation[0]),
        tables={name: column_types(conn, name) for name in names},
        contents=contents,
        files=tree(root),
    )


def assert_upload_dir_empty(settings: Settings) -> None:
    """The loader's work directories are gone (the upload dir itself may stay)."""
    upload = settings.upload_dir
    left = sorted(p.relative_to(upload).as_posix() for p in upload.rglob("*"))
    assert left == []


# -- every supported format -------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A good file and everything that must be true once it is ingested."""

    make: Callable[[Path], Path]
    source_format: str
    source_layer: str
    source_crs: str
    source_encoding: str | None
    geometry_type: str
    values: Callable[[int], dict[str, Any]]
    geometry: Callable[[int], shapely.Geometry]
    places: tuple[int, ...] = ALL_PLACES
    options: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # regexes, one per expected warning


def _bare_shapefile(d: Path) -> Path:
    return files.make_shapefile(d / "user_folder", geometry="Polygon")


def _cp950(d: Path) -> Path:
    return files.make_big5_shapefile_zip(d, encoding="cp950", ldid=0x78)


def _one_layer_gpkg(d: Path) -> Path:
    return files.make_geopackage(d, layers={"places": "Point"})


def _csv_lonlat(d: Path) -> Path:
    return files.make_csv(d, extra=csv_extra())


def _csv_hk1980(d: Path) -> Path:
    return files.make_csv(
        d,
        columns=("name_en", "name_tc", "Easting", "Northing"),
        coordinates="hk1980",
        extra=csv_extra(),
    )


FORMATS: dict[str, Format] = {
    "shapefile-zip-cpg": Format(
        make=files.make_shapefile_zip,
        source_format="ESRI Shapefile",
        source_layer="places",
        source_crs="EPSG:2326",
        source_encoding="utf-8",
        geometry_type="Point",
        values=place_values,
        geometry=hk1980_source("Point"),
    ),
    "shapefile-zip-big5hkscs-no-cpg": Format(
        make=files.make_big5_shapefile_zip,
        source_format="ESRI Shapefile",
        source_layer="big5",
        source_crs="EPSG:2326",
        source_encoding="big5hkscs",
        geometry_type="Point",
        values=place_values,
        geometry=hk1980_source("Point"),
        warnings=(r"encoding was guessed as big5hkscs",),
    ),
    "shapefile-zip-big5-ldid-no-cpg": Format(
        make=_cp950,
        source_format="ESRI Shapefile",
        source_layer="big5",
        source_crs="EPSG:2326",
        source_encoding="cp950",
        geometry_type="Point",
        values=place_values,
        geometry=hk1980_source("Point"),
        # 鰂魚涌 and 鴨脷洲 are not in plain Big5: the generator leaves them out.
        places=tuple(i for i in ALL_PLACES if i not in (2, 5)),
    ),
    "shapefile-bare-shp": Format(
        make=_bare_shapefile,
        source_format="ESRI Shapefile",
        source_layer="places",
        source_crs="EPSG:2326",
        source_encoding="utf-8",
        geometry_type="Polygon",
        values=place_values,
        geometry=hk1980_source("Polygon"),
    ),
    "geopackage-one-layer": Format(
        make=_one_layer_gpkg,
        source_format="GPKG",
        source_layer="places",
        source_crs="EPSG:2326",
        source_encoding=None,
        geometry_type="Point",
        values=place_values,
        geometry=hk1980_source("Point"),
    ),
    "geopackage-second-of-two-layers": Format(
        make=files.make_geopackage,
        source_format="GPKG",
        source_layer="districts",
        source_crs="EPSG:2326",
        source_encoding=None,
        geometry_type="Polygon",
        values=place_values,
        geometry=hk1980_source("Polygon"),
        options={"source_layer": "districts"},
    ),
    "geojson": Format(
        make=files.make_geojson,
        source_format="GeoJSON",
        source_layer="places",
        source_crs="EPSG:4326",
        source_encoding=None,
        geometry_type="Point",
        values=place_values,
        geometry=wgs84_source,
    ),
    "csv-lon-lat": Format(
        make=_csv_lonlat,
        source_format="CSV",
        source_layer="places",
        source_crs="EPSG:4326",
        source_encoding="utf-8",
        geometry_type="Point",
        values=csv_values,
        geometry=csv_lonlat_source,
    ),
    "csv-hk1980-easting-northing": Format(
        make=_csv_hk1980,
        source_format="CSV",
        source_layer="places",
        source_crs="EPSG:2326",
        source_encoding="utf-8",
        geometry_type="Point",
        values=csv_values,
        geometry=csv_hk1980_source,
    ),
    "filegdb-zip": Format(
        make=files.make_filegdb_zip,
        source_format="OpenFileGDB",
        source_layer="lots",
        source_crs="EPSG:2326",
        source_encoding=None,
        geometry_type="MultiPolygon",
        values=gdb_values,
        geometry=hk1980_source("Polygon"),
    ),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_becomes_version_1(
    conn: Conn,
    settings: Settings,
    agency: registry.Agency,
    tmp_path: Path,
    name: str,
) -> None:
    case = FORMATS[name]
    source_dir = tmp_path / "in"
    source_dir.mkdir()
    path = case.make(source_dir)
    before = tree(source_dir)
    layer = new_layer(conn, agency, "landsd_sample")

    version = ingest_file(conn, settings, path, layer=layer.slug, **case.options)

    # the version record
    n = len(case.places)
    assert [v.number for v in registry.list_versions(conn, layer.id)] == [1]
    assert version == registry.get_version(conn, layer.id, 1)
    assert version.number == 1
    assert version.feature_count == n
    assert version.source_filename == path.name
    assert version.source_sha256 == sha256(path)
    assert version.source_format == case.source_format
    assert version.source_layer == case.source_layer
    assert version.source_crs == case.source_crs
    assert version.source_encoding == case.source_encoding
    assert version.geometry_type == case.geometry_type
    assert version.diff == {"added": n, "changed": 0, "removed": 0, "unchanged": 0}
    assert version.report["repaired"] == 0 and version.report["empty"] == 0
    warnings = version.report["warnings"]
    assert len(warnings) == len(case.warnings), warnings
    for pattern, warning in zip(case.warnings, warnings, strict=True):
        assert re.search(pattern, warning), warning
    expected = [case.values(i) for i in case.places]
    types = {k: PG_TYPE_OF[type(v)] for k, v in expected[0].items()}
    assert version.schema == {
        "fields": [{"name": k, "type": t} for k, t in types.items()],
        "geometry_type": case.geometry_type,
        "srid": 4326,
    }
    assert registry.get_layer(conn, layer.slug).published_version is None

    # the rows: attribute values intact and typed, geometries in EPSG:4326
    assert column_types(conn, layer.slug) == types
    rows = version_rows(conn, layer.slug, 1, list(types))
    assert len(rows) == n
    geometries = []
    for i, want, row in zip(case.places, expected, rows, strict=True):
        *values, wkb, srid = row
        got = dict(zip(types, values, strict=True))
        assert got == want
        assert {k: type(v) for k, v in got.items()} == {
            k: type(v) for k, v in want.items()
        }
        assert srid == 4326
        shape = shapely.from_wkb(bytes(wkb))
        assert shape.geom_type == case.geometry_type
        assert_same_geometry(shape, case.geometry(i))
        geometries.append(case.geometry(i))
    # Chinese names exactly, including the HKSCS-only characters where present
    name_column = "NAME_TC" if "NAME_TC" in types else "name_tc"
    assert [r[list(types).index(name_column)] for r in rows] == [
        files.place(i)[1] for i in case.places
    ]

    # the WGS 84 extent
    assert version.extent is not None
    box = shapely.total_bounds(np.asarray(geometries, dtype=object))
    np.testing.assert_allclose(version.extent, box, rtol=0, atol=TOLERANCE)

    # the audit trail, and nothing left on disk but the user's own files
    entries = registry.audit.list_audit(
        conn, object_type="layer", object_id="landsd_sample"
    )
    assert [(a.action, a.details.get("version")) for a in entries] == [
        ("ingest", 1),
        ("create", None),
    ]
    assert_upload_dir_empty(settings)
    assert tree(source_dir) == before


def test_shapefile_without_prj_loads_with_a_given_crs(
    conn: Conn, settings: Settings, agency: registry.Agency, tmp_path: Path
) -> None:
    archive = files.make_shapefile_zip(tmp_path, with_prj=False)
    layer = new_layer(conn, agency, "landsd_noprj")
    version = ingest_file(conn, settings, archive, layer=layer.slug, crs="EPSG:2326")
    assert version.source_crs == "EPSG:2326"
    assert version.feature_count == len(files.PLACES)
    rows = version_rows(conn, layer.slug, 1, ["ID"])
    for i, (fid, wkb, srid) in enumerate(rows):
        assert (fid, srid) == (i + 1, 4326)
        assert_same_geometry(shapely.from_wkb(bytes(wkb)), hk1980_source("Point")(i))
    assert_upload_dir_empty(settings)


def test_second_version_stores_only_the_changes(
    conn: Conn, settings: Settings, agency: registry.Agency, tmp_path: Path
) -> None:
    layer = new_layer(conn, agency, "landsd_places", key_column="ID")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    v1 = ingest_file(
        conn,
        settings,
        files.make_places_shapefile_zip(tmp_path / "v1", range(10)),
        layer=layer.slug,
    )
    registry.publish(conn, layer.slug, 1)
    # v2: places 0 and 1 gone, 3 renamed, 4 moved 15 m east, 10 and 11 new
    v2 = ingest_file(
        conn,
        settings,
        files.make_places_shapefile_zip(
            tmp_path / "v2",
            range(2, 12),
            renamed={3: "沙田（新）"},
            moved={4: (15.0, 0.0)},
        ),
        layer=layer.slug,
    )
    assert v1.diff == {"added": 10, "changed": 0, "removed": 0, "unchanged": 0}
    assert v2.number == 2
    assert v2.diff == {"added": 2, "changed": 2, "removed": 2, "unchanged": 6}
    assert v2.feature_count == 10
    # the published version did not move
    assert registry.get_layer(conn, layer.slug).published_version == 1

    columns = ["ID", "NAME_TC"]
    old = {r[0]: r for r in version_rows(conn, layer.slug, 1, columns)}
    new = {r[0]: r for r in version_rows(conn, layer.slug, 2, columns)}
    assert sorted(old) == list(range(1, 11))
    assert sorted(new) == list(range(3, 13))
    assert old[4][1] == "沙田" and new[4][1] == "沙田（新）"
    e, n = files.hk80(*files.place(4)[2:])
    moved = to_wgs84(shapely.Point(e + 15.0, n))
    assert_same_geometry(shapely.from_wkb(bytes(new[5][2])), moved)
    assert_same_geometry(shapely.from_wkb(bytes(old[5][2])), hk1980_source("Point")(4))
    assert_same_geometry(
        shapely.from_wkb(bytes(new[12][2])), hk1980_source("Point")(11)
    )
    # storage grows with the changes: 10 rows + 2 new + 2 changed states
    total = conn.execute("SELECT count(*) FROM sdi_data.landsd_places").fetchone()
    assert total == (14,)
    # unchanged features keep their row (and so their feature id)
    kept = conn.execute(
        'SELECT count(*) FROM sdi_data.landsd_places WHERE "ID" IN (3, 6, 7, 8, 9, 10)'
    ).fetchone()
    assert kept == (6,)
    assert_upload_dir_empty(settings)


# -- every bad input ----------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad upload, the error it must raise and what its message must say."""

    make: Callable[[Path], Path]
    error: type[SdiError]
    status: int
    message: str  # a regex the message must match (re.search)
    options: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)  # Settings changes
    copied: int = 0  # features COPYed into the database before the error


MIB = 1024 * 1024


def _slip_far(d: Path) -> Path:
    # deep enough to climb out of upload_dir, var/ and the test's own tmp_path
    return files.make_zip_with_member(d, "../" * 8 + "evil.txt", b"owned")


def _slip_nested(d: Path) -> Path:
    inner_dir = d / "inner"
    inner_dir.mkdir()
    return files.make_zip_in_zip(d, files.make_zip_slip(inner_dir))


def _zero_geojson(d: Path) -> Path:
    return files.make_empty_file(d, "nothing.geojson")


def _zero_zip(d: Path) -> Path:
    return files.make_empty_file(d, "upload.zip")


def _reserved_name(d: Path) -> Path:
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    feature = files.geojson_feature(point, {"name": "a", "_sdi_x": 1})
    return files.write_geojson(d / "reserved.geojson", [feature])


def _case_twins(d: Path) -> Path:
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    feature = files.geojson_feature(point, {"Name": "a", "NAME": "b"})
    return files.write_geojson(d / "twins.geojson", [feature])


def _system_column(d: Path) -> Path:
    # bounding-box attributes are common in GIS exports
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    props = {"xmin": 1.0, "ymin": 2.0, "xmax": 3.0, "ymax": 4.0}
    return files.write_geojson(
        d / "bbox.geojson", [files.geojson_feature(point, props)]
    )


def _long_name(d: Path) -> Path:
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    props = {"名稱" * 11: "21 Chinese characters are 66 bytes"}
    return files.write_geojson(
        d / "long.geojson", [files.geojson_feature(point, props)]
    )


def _collections_only(d: Path) -> Path:
    parts = [files.place_geometry(i, crs="EPSG:4326", geometry="Point") for i in (0, 1)]
    collection = {"type": "GeometryCollection", "geometries": parts}
    features = [files.geojson_feature(collection, {"ID": i}) for i in range(3)]
    return files.write_geojson(d / "collections.geojson", features)


def _big_truncated(d: Path) -> Path:
    # Two batches of 10,000 are COPYed into the staging table before the error.
    return files.make_truncated_shapefile_zip(d, n=25_000)


def _two_shapefiles(d: Path) -> Path:
    roads = files.make_shapefile(d / "src", name="roads", n=2, geometry="LineString")
    lamps = files.make_shapefile(d / "src", name="lamps", n=3)
    parts = files.shapefile_parts(roads) + files.shapefile_parts(lamps)
    return files.zip_files(d / "two.zip", parts)


def _text_file(d: Path) -> Path:
    path = d / "notes.txt"
    path.write_text("minutes of the survey meeting\n")
    return path


def _no_prj(d: Path) -> Path:
    return files.make_shapefile_zip(d, with_prj=False)


def _omit(suffix: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        return files.make_shapefile_zip(d, omit=[suffix])

    return make


BAD: dict[str, Bad] = {
    "zip-member-dotdot": Bad(
        files.make_zip_slip,
        IngestError,
        400,
        r"^hostile\.zip: member '\.\./evil\.txt' points outside the archive",
    ),
    "zip-member-dotdot-deep": Bad(
        _slip_far, IngestError, 400, r"^hostile\.zip: .* points outside the archive"
    ),
    "zip-member-dotdot-in-inner-zip": Bad(
        _slip_nested,
        IngestError,
        400,
        r"^hostile\.zip: member '\.\./evil\.txt' points outside the archive",
    ),
    "zip-member-absolute": Bad(
        files.make_zip_absolute,
        IngestError,
        400,
        r"member '/tmp/evil\.txt' has an absolute path",
    ),
    "zip-member-symlink": Bad(
        files.make_zip_symlink,
        IngestError,
        400,
        r"member 'passwd' is a symbolic link",
    ),
    "zip-encrypted": Bad(
        files.make_encrypted_zip, IngestError, 400, r"'secret\.geojson' is encrypted"
    ),
    "zip-bomb": Bad(
        files.make_zip_bomb,
        TooLargeError,
        413,
        r"^bomb\.zip would unpack to 50\.0 MiB, over the limit of 1\.0 MiB",
        limits={"max_unpacked_bytes": MIB},
    ),
    # Headers claiming 10 bytes for 4 MiB: zipfile stops at the claimed size,
    # so nothing past the claim is written, and the CRC check refuses it.
    "zip-bomb-lying-sizes": Bad(
        files.make_lying_zip,
        IngestError,
        400,
        r"^liar\.zip: member 'data\.bin' is damaged \(Bad CRC-32",
        limits={"max_unpacked_bytes": MIB},
    ),
    "zip-too-many-members": Bad(
        lambda d: files.make_many_members_zip(d, 50),
        TooLargeError,
        413,
        r"^many\.zip holds 50 files; at most 20 are accepted",
        limits={"max_zip_members": 20},
    ),
    "not-a-zip-named-zip": Bad(
        files.make_fake_zip,
        IngestError,
        400,
        r"^notazip\.zip is not a valid zip archive",
    ),
    "zip-empty": Bad(
        files.make_empty_zip,
        IngestError,
        400,
        r"^empty\.zip is empty: it holds no data files",
    ),
    "zero-byte-geojson": Bad(
        _zero_geojson, IngestError, 400, r"^nothing\.geojson is empty \(0 bytes\)"
    ),
    "zero-byte-zip": Bad(
        _zero_zip, IngestError, 400, r"^upload\.zip is empty \(0 bytes\)"
    ),
    "shapefile-zip-without-shp": Bad(
        _omit(".shp"),
        IngestError,
        400,
        r"^places\.zip holds a Shapefile without its \.shp file",
    ),
    "shapefile-zip-without-dbf": Bad(
        _omit(".dbf"),
        IngestError,
        400,
        r"^The Shapefile places\.shp is missing places\.dbf \(its attribute table\)",
    ),
    "shapefile-zip-without-shx": Bad(
        _omit(".shx"),
        IngestError,
        400,
        r"^The Shapefile places\.shp is missing places\.shx \(its index\)",
    ),
    "shapefile-zip-without-prj": Bad(
        _no_prj,
        IngestError,
        400,
        r"places\.shp has no coordinate reference system \(for a Shapefile: no "
        r"\.prj file\)\. Pass the CRS .*--crs EPSG:2326",
    ),
    "unknown-crs-code": Bad(
        _no_prj,
        IngestError,
        400,
        r"^Unknown or unreadable CRS 'EPSG:999999'; give an EPSG code",
        options={"crs": "EPSG:999999"},
    ),
    "unreadable-crs-text": Bad(
        _no_prj,
        IngestError,
        400,
        r"^Unknown or unreadable CRS 'HK grid please'",
        options={"crs": "HK grid please"},
    ),
    "mixed-geometry-types": Bad(
        files.make_mixed_geojson,
        IngestError,
        400,
        r"^mixed\.geojson mixes geometry types: Point \(first at feature 1\), "
        r"Polygon \(first at feature 3\), LineString \(first at feature 4\)",
    ),
    "corrupt-last-record-geojson": Bad(
        files.make_bad_geojson,
        IngestError,
        400,
        r"^Feature 8 of bad\.geojson could not be read: Invalid 'x' coordinate",
    ),
    "truncated-shp-last-record": Bad(
        files.make_truncated_shapefile_zip,
        IngestError,
        400,
        r"^Feature 25 of truncated\.shp could not be read: .*damaged or truncated; "
        r"nothing was loaded\.$",
    ),
    "truncated-shp-after-20000-records": Bad(
        _big_truncated,
        IngestError,
        400,
        r"^Feature 25000 of truncated\.shp could not be read: .*damaged or "
        r"truncated; nothing was loaded\.$",
        copied=10_000,
    ),
    "geopackage-two-layers-without-choice": Bad(
        files.make_geopackage,
        IngestError,
        400,
        # the option of `sdi ingest` is --source-layer (--layer is the layer id)
        r"^data\.gpkg has several layers: places, districts\. Choose one with "
        r"--source-layer NAME\.$",
    ),
    "geopackage-unknown-layer": Bad(
        files.make_geopackage,
        IngestError,
        400,
        r"^data\.gpkg has no layer 'roads'; its layers are: places, districts\.$",
        options={"source_layer": "roads"},
    ),
    "zip-with-two-datasets": Bad(
        _two_shapefiles,
        IngestError,
        400,
        r"^two\.zip holds several datasets: lamps \(Shapefile\), roads "
        r"\(Shapefile\)\. Choose one with --source-layer NAME",
    ),
    "reserved-attribute-name": Bad(
        _reserved_name,
        IngestError,
        400,
        r"^reserved\.geojson has attribute\(s\) named '_sdi_x': names starting "
        r"with '_sdi_' are reserved",
    ),
    "attribute-names-equal-but-for-case": Bad(
        _case_twins,
        IngestError,
        400,
        r"^twins\.geojson has attributes 'Name' and 'NAME', which differ only in "
        r"letter case",
    ),
    "attribute-named-like-a-system-column": Bad(
        _system_column,
        IngestError,
        400,
        r"^bbox\.geojson has attribute\(s\) named 'xmin', 'xmax': PostgreSQL uses "
        r"these names for its own columns",
    ),
    "attribute-name-over-63-bytes": Bad(
        _long_name,
        IngestError,
        400,
        r"^Attribute name '(名稱){11}' is longer than PostgreSQL's 63 bytes",
    ),
    # refused by the loader after the rows are staged, not by the reader
    "geometry-collections-only": Bad(
        _collections_only,
        IngestError,
        400,
        r"^The file contains geometry collections; split them",
        copied=3,
    ),
    "upload-over-max-upload-bytes": Bad(
        files.make_geojson,
        TooLargeError,
        413,
        r"^places\.geojson is [0-9,]+ bytes; the limit is 100 "
        r"\(SDI_MAX_UPLOAD_BYTES\)",
        limits={"max_upload_bytes": 100},
    ),
    "unsupported-format": Bad(
        _text_file,
        UnsupportedFormatError,
        415,
        r"^notes\.txt is not in a format sdi reads\. Supported: zipped Shapefile",
    ),
}

#: Where a climbing zip member could land: next to the work dirs and above.
EVIL = "evil.txt"


@pytest.fixture
def published(conn: Conn, settings: Settings, agency: registry.Agency) -> str:
    """A published layer of one point with a single column, ``KEEP``."""
    layer = new_layer(conn, agency, "landsd_target")
    first = settings.var_dir.parent / "published.geojson"
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    files.write_geojson(first, [files.geojson_feature(point, {"KEEP": "v1 值"})])
    ingest_file(conn, settings, first, layer=layer.slug)
    registry.publish(conn, layer.slug, 1)
    first.unlink()
    return layer.slug


@pytest.mark.parametrize("target", ["new-layer", "published-layer"])
@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_refused_and_leaves_nothing(
    conn: Conn,
    settings: Settings,
    agency: registry.Agency,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    name: str,
    target: str,
) -> None:
    case = BAD[name]
    if target == "new-layer":
        slug = new_layer(conn, agency, "landsd_target").slug
    else:
        slug = request.getfixturevalue("published")
    source_dir = tmp_path / "in"
    source_dir.mkdir()
    path = case.make(source_dir)
    limited = settings.with_(**case.limits) if case.limits else settings
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    watched = [settings.upload_dir, *settings.upload_dir.parents][:8]
    absolute_before = Path("/tmp", EVIL).exists()
    before = state(conn, tmp_path)

    progress: list[int] = []

    def report(done: int, total: int | None) -> None:
        progress.append(done)

    with pytest.raises(SdiError) as caught:
        ingest_file(conn, limited, path, layer=slug, progress=report, **case.options)

    error = caught.value
    assert type(error) is case.error, repr(error)
    assert error.status == case.status and 400 <= error.status < 500
    assert re.search(case.message, error.message), error.message
    assert "Traceback" not in error.message
    # nothing left behind: registry, tables, columns, rows, audit, files
    after = state(conn, tmp_path)
    assert after == before
    if target == "new-layer":
        assert "landsd_target" not in after.tables
    else:
        assert after.tables["landsd_target"] == {"KEEP": "text"}
        assert registry.get_layer(conn, slug).published_version == 1
    assert_upload_dir_empty(settings)
    for directory in watched:
        assert not (directory / EVIL).exists(), directory
    assert Path("/tmp", EVIL).exists() == absolute_before
    assert max(progress, default=0) == case.copied
    # the connection is usable and the layer takes a good file at once
    good = files.make_geojson(tmp_path / "in", name="good")
    version = ingest_file(conn, settings, good, layer=slug)
    assert version.number == (1 if target == "new-layer" else 2)
    assert version.feature_count == len(files.PLACES)
    assert_upload_dir_empty(settings)


def _refused_cleanly(
    conn: Conn, settings: Settings, tmp_path: Path, path: Path, slug: str
) -> SdiError:
    """Ingest ``path``, expecting an SdiError that leaves everything as it was."""
    settings.upload_dir.mkdir(parents=True, exist_ok=True)  # made by any ingest
    before = state(conn, tmp_path)
    with pytest.raises(SdiError) as caught:
        ingest_file(conn, settings, path, layer=slug)
    assert 400 <= caught.value.status < 500
    assert state(conn, tmp_path) == before
    assert_upload_dir_empty(settings)
    return caught.value


def test_more_columns_than_postgresql_allows(
    conn: Conn, settings: Settings, agency: registry.Agency, tmp_path: Path
) -> None:
    slug = new_layer(conn, agency, "landsd_wide").slug
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    props = {f"c{i}": i for i in range(1700)}
    path = files.write_geojson(
        tmp_path / "wide.geojson", [files.geojson_feature(point, props)]
    )
    error = _refused_cleanly(conn, settings, tmp_path, path, slug)
    assert re.search(r"1700 attributes.*1600", error.message), error.message


def test_key_value_too_long_for_the_index(
    conn: Conn, settings: Settings, agency: registry.Agency, tmp_path: Path
) -> None:
    slug = new_layer(conn, agency, "landsd_keyed", key_column="K").slug
    point = files.place_geometry(0, crs="EPSG:4326", geometry="Point")
    # 10,240 hex digits without repeats: too long for an index row
    long_key = "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(160))
    features = [
        files.geojson_feature(point, {"K": long_key}),
        files.geojson_feature(point, {"K": "short"}),
    ]
    path = files.write_geojson(tmp_path / "keys.geojson", features)
    error = _refused_cleanly(conn, settings, tmp_path, path, slug)
    assert re.search(r"[Kk]ey column 'K'.*too long", error.message), error.message


# -- the command line -------------------------------------------------------------


@pytest.fixture
def run(db_url: str, tmp_path: Path) -> Callable[..., Result]:
    """Run ``sdi ingest ...`` against the test database with a private var/."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": db_url,
        "SDI_VAR_DIR": str(tmp_path / "var"),
        "SDI_COLLECTIONS_DIR": str(tmp_path / "collections"),
        "SDI_CONFIG_DIR": str(Path(__file__).resolve().parents[2] / "config"),
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["ingest", *args], env=env)

    return invoke


def test_cli_ingests_a_good_file_into_a_new_layer(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    archive = files.make_shapefile_zip(tmp_path)
    result = run(str(archive), "--layer", "landsd_places", "--agency", "landsd")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "landsd_places version 1: 10 features (Point, EPSG:2326); +10 ~0 -0; "
        "0 geometries repaired, 0 empty\n"
    )
    assert "Registered layer landsd_places for landsd" in result.stderr
    layer = registry.get_layer(conn, "landsd_places")
    assert layer.published_version is None
    assert [v.feature_count for v in registry.list_versions(conn, layer.id)] == [10]
    rows = version_rows(conn, "landsd_places", 1, ["NAME_TC"])
    assert [r[0] for r in rows] == [p[1] for p in files.PLACES]
    assert list((tmp_path / "var" / "uploads").iterdir()) == []


def test_cli_bad_file_is_a_clear_error_without_traceback(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    new_layer(conn, agency, "landsd_places")
    archive = files.make_shapefile_zip(tmp_path, with_prj=False)
    (tmp_path / "var" / "uploads").mkdir(parents=True)
    before = state(conn, tmp_path)
    result = run(str(archive), "--layer", "landsd_places")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    # (rich's transient progress bar leaves one blank line before the error)
    assert result.stderr.lstrip("\n").startswith(
        "Error: places.shp has no coordinate reference system (for a Shapefile: "
        "no .prj file)."
    )
    assert "--crs EPSG:2326" in result.stderr
    assert "Traceback" not in result.output
    assert state(conn, tmp_path) == before
    assert list((tmp_path / "var" / "uploads").iterdir()) == []
    # the hint works
    again = run(str(archive), "--layer", "landsd_places", "--crs", "EPSG:2326")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("landsd_places version 1: 10 features")


def test_cli_bad_file_for_a_new_layer_registers_nothing(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    archive = files.make_zip_slip(tmp_path)
    result = run(str(archive), "--layer", "landsd_new", "--agency", "landsd")
    assert result.exit_code == 1
    assert "points outside the archive" in result.stderr
    assert [layer.slug for layer in registry.list_layers(conn)] == []
    assert registry.audit.list_audit(conn, object_type="layer") == []


def test_cli_publish_flag_publishes_the_new_version(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    path = files.make_geojson(tmp_path)
    result = run(
        str(path), "--layer", "landsd_places", "--agency", "landsd", "--publish"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "landsd_places version 1: 10 features (Point, EPSG:4326); +10 ~0 -0; "
        "0 geometries repaired, 0 empty",
        "published landsd_places version 1",
    ]
    assert registry.get_layer(conn, "landsd_places").published_version == 1
    assert (tmp_path / "collections" / "landsd_places.yml").is_file()


def test_cli_new_layer_without_agency_is_a_clear_error(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    path = files.make_geojson(tmp_path)
    result = run(str(path), "--layer", "landsd_places")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Layer 'landsd_places' is new: name its owner with --agency.\n"
    )
    assert registry.list_layers(conn) == []
    table = conn.execute("SELECT to_regclass('sdi_data.landsd_places')").fetchone()
    assert table == (None,)


def test_cli_unknown_agency_is_a_clear_error(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    path = files.make_geojson(tmp_path)
    result = run(str(path), "--layer", "landsd_places", "--agency", "nosuch")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "nosuch" in result.stderr
    assert "Traceback" not in result.output
    assert registry.list_layers(conn) == []


def test_cli_layer_choice_follows_the_hint(
    conn: Conn, agency: registry.Agency, run: Callable[..., Result], tmp_path: Path
) -> None:
    gpkg = files.make_geopackage(tmp_path)
    args = (str(gpkg), "--layer", "landsd_districts", "--agency", "landsd")
    refused = run(*args)
    assert refused.exit_code == 1
    assert "Choose one with --source-layer NAME." in refused.stderr
    # doing what the message says works
    result = run(*args, "--source-layer", "districts")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "landsd_districts version 1: 10 features (Polygon, EPSG:2326); +10 ~0 -0"
    )
    version = registry.get_version(
        conn, registry.get_layer(conn, "landsd_districts").id, 1
    )
    assert (version.source_format, version.source_layer) == ("GPKG", "districts")
