"""Generators of real test files for ingestion: good, odd and hostile.

Every function writes into the directory it is given (usually ``tmp_path``)
and returns the path of the file to upload. The files are made with fiona,
zipfile and plain bytes, never mocked, so readers and loaders are tested on
what an agency would really send.

The sample places are real Hong Kong districts with their English and
traditional Chinese names; some names (鰂魚涌, 鴨脷洲) use characters that only
Big5-HKSCS has, not Big5 or cp950.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import fiona
from pyproj import Transformer

from sdi.settings import Settings

#: (English name, Chinese name, longitude, latitude) of sample places, WGS 84.
PLACES: tuple[tuple[str, str, float, float], ...] = (
    ("Central", "中環", 114.1588, 22.2816),
    ("Mong Kok", "旺角", 114.1694, 22.3193),
    ("Quarry Bay", "鰂魚涌", 114.2139, 22.2878),
    ("Sha Tin", "沙田", 114.1880, 22.3817),
    ("Tsim Sha Tsui", "尖沙咀", 114.1722, 22.2976),
    ("Ap Lei Chau", "鴨脷洲", 114.1555, 22.2416),
    ("Tuen Mun", "屯門", 113.9770, 22.3916),
    ("Sai Kung", "西貢", 114.2710, 22.3814),
    ("Yuen Long", "元朗", 114.0325, 22.4445),
    ("Tai Po", "大埔", 114.1688, 22.4507),
)

#: The schema of the sample place layers (Shapefile-safe names and types).
PLACE_SCHEMA: dict[str, str] = {
    "ID": "int",
    "NAME_EN": "str:40",
    "NAME_TC": "str:40",
    "AREA_M2": "float",
    "SURVEYED": "date",
}

_TO_HK80 = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)


def reader_settings(tmp: Path, **changes: Any) -> Settings:
    """Settings for tests that read files without a database."""
    base = Settings(var_dir=tmp / "var", secret_key="test-secret")
    return base.with_(**changes) if changes else base


def hk80(lon: float, lat: float) -> tuple[float, float]:
    """Hong Kong 1980 Grid easting, northing of a WGS 84 longitude, latitude."""
    e, n = _TO_HK80.transform(lon, lat)
    return float(e), float(n)


def place(i: int) -> tuple[str, str, float, float]:
    """The i-th sample place; names get a number after the first round."""
    en, tc, lon, lat = PLACES[i % len(PLACES)]
    if i >= len(PLACES):
        k = i // len(PLACES)
        en, tc = f"{en} {k}", f"{tc}{k}"
        lon += (k % 100) * 0.0005
        lat += (k // 100 % 100) * 0.0005
    return en, tc, lon, lat


def place_properties(i: int) -> dict[str, Any]:
    """The attribute values of sample place i (see :data:`PLACE_SCHEMA`)."""
    en, tc, _, _ = place(i)
    return {
        "ID": i + 1,
        "NAME_EN": en,
        "NAME_TC": tc,
        "AREA_M2": 1600.0 + i,
        "SURVEYED": (dt.date(2020, 1, 1) + dt.timedelta(days=i % 1000)).isoformat(),
    }


def _square(x: float, y: float, half: float) -> list[list[tuple[float, float]]]:
    return [
        [
            (x - half, y - half),
            (x + half, y - half),
            (x + half, y + half),
            (x - half, y + half),
            (x - half, y - half),
        ]
    ]


def place_geometry(i: int, *, crs: str, geometry: str) -> dict[str, Any]:
    """Sample place i as a GeoJSON-like Point or 40 m square Polygon."""
    _, _, lon, lat = place(i)
    if crs.upper() in ("EPSG:2326", "2326"):
        x, y = hk80(lon, lat)
        half = 20.0
    else:
        x, y = lon, lat
        half = 0.0002
    if geometry == "Point":
        return {"type": "Point", "coordinates": (x, y)}
    if geometry == "Polygon":
        return {"type": "Polygon", "coordinates": _square(x, y, half)}
    if geometry == "LineString":
        return {"type": "LineString", "coordinates": [(x, y), (x + half, y + half)]}
    raise ValueError(geometry)


def make_shapefile(
    directory: Path,
    *,
    name: str = "places",
    n: int = len(PLACES),
    crs: str | None = "EPSG:2326",
    geometry: str = "Point",
    encoding: str = "utf-8",
    with_cpg: bool = True,
    with_prj: bool = True,
    ldid: int | None = None,
    prj_text: str | None = None,
) -> Path:
    """A Shapefile of ``n`` sample places; returns the ``.shp`` path.

    ``encoding`` is the .dbf's text encoding; ``with_cpg=False`` leaves out
    the .cpg that names it, ``ldid`` sets the DBF language driver byte,
    ``with_prj=False`` leaves out the .prj, ``prj_text`` replaces it (e.g.
    with Esri WKT without an EPSG code).
    """
    directory.mkdir(parents=True, exist_ok=True)
    shp = directory / f"{name}.shp"
    schema = {"geometry": geometry, "properties": PLACE_SCHEMA}
    with fiona.open(
        shp,
        "w",
        driver="ESRI Shapefile",
        crs=crs or "EPSG:2326",
        schema=schema,
        encoding=encoding,
    ) as dst:
        dst.writerecords(
            {
                "geometry": place_geometry(
                    i, crs=crs or "EPSG:2326", geometry=geometry
                ),
                "properties": place_properties(i),
            }
            for i in range(n)
        )
    cpg = shp.with_suffix(".cpg")
    if not with_cpg:
        cpg.unlink(missing_ok=True)
    prj = shp.with_suffix(".prj")
    if not with_prj or crs is None:
        prj.unlink(missing_ok=True)
    elif prj_text is not None:
        prj.write_text(prj_text)
    if ldid is not None:
        set_dbf_ldid(shp.with_suffix(".dbf"), ldid)
    return shp


def set_dbf_ldid(dbf: Path, ldid: int) -> None:
    """Set the language driver byte (offset 29) of a ``.dbf`` file."""
    with dbf.open("r+b") as fh:
        fh.seek(29)
        fh.write(bytes([ldid]))


def shapefile_parts(shp: Path) -> list[Path]:
    """The files making up the Shapefile ``shp`` (.shp, .shx, .dbf, ...)."""
    return sorted(p for p in shp.parent.iterdir() if p.stem == shp.stem)


def zip_files(
    archive: Path, files: Iterable[Path], *, prefix: str = "", arcnames: bool = True
) -> Path:
    """Zip ``files`` into ``archive`` under ``prefix`` (a folder inside the zip)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            if f.is_dir():
                for sub in sorted(f.rglob("*")):
                    if sub.is_file():
                        zf.write(
                            sub, prefix + f.name + "/" + sub.relative_to(f).as_posix()
                        )
            else:
                zf.write(f, prefix + f.name if arcnames else str(f))
    return archive


def make_shapefile_zip(
    directory: Path,
    *,
    name: str = "places",
    n: int = len(PLACES),
    crs: str | None = "EPSG:2326",
    geometry: str = "Point",
    encoding: str = "utf-8",
    with_cpg: bool = True,
    with_prj: bool = True,
    ldid: int | None = None,
    prj_text: str | None = None,
    omit: Sequence[str] = (),
    folder: str = "",
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """A zipped Shapefile of ``n`` sample places in EPSG:2326 (by default).

    Attributes: ``ID``, ``NAME_EN``, ``NAME_TC`` (Chinese), ``AREA_M2``,
    ``SURVEYED`` (date). ``omit`` leaves parts out (e.g. ``[".dbf"]``),
    ``folder`` puts the parts in a folder inside the zip, ``extra`` adds
    files (name -> bytes). Other options as :func:`make_shapefile`.
    """
    src = directory / f"_{name}_parts"
    shp = make_shapefile(
        src,
        name=name,
        n=n,
        crs=crs,
        geometry=geometry,
        encoding=encoding,
        with_cpg=with_cpg,
        with_prj=with_prj,
        ldid=ldid,
        prj_text=prj_text,
    )
    parts = [p for p in shapefile_parts(shp) if p.suffix.lower() not in omit]
    archive = zip_files(directory / f"{name}.zip", parts, prefix=folder)
    if extra:
        with zipfile.ZipFile(archive, "a") as zf:
            for member, data in extra.items():
                zf.writestr(member, data)
    shutil.rmtree(src)
    return archive


def make_big5_shapefile_zip(
    directory: Path, *, encoding: str = "big5hkscs", ldid: int = 0, name: str = "big5"
) -> Path:
    """A zipped Shapefile whose .dbf is Big5(-HKSCS) text with no .cpg file.

    With the default ``big5hkscs`` it holds HKSCS-only characters (鰂魚涌,
    鴨脷洲); with ``big5`` or ``cp950`` only the places Big5 can encode.
    """
    n = len(PLACES)
    if encoding != "big5hkscs":
        src = directory / f"_{name}_parts"
        shp = _write_places(
            src, name, encoding, [i for i in range(n) if _encodes(i, encoding)]
        )
        set_dbf_ldid(shp.with_suffix(".dbf"), ldid)
        shp.with_suffix(".cpg").unlink(missing_ok=True)
        archive = zip_files(directory / f"{name}.zip", shapefile_parts(shp))
        shutil.rmtree(src)
        return archive
    return make_shapefile_zip(
        directory, name=name, n=n, encoding=encoding, with_cpg=False, ldid=ldid
    )


def _encodes(i: int, encoding: str) -> bool:
    try:
        place(i)[1].encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _write_places(
    directory: Path, name: str, encoding: str, indexes: list[int]
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shp = directory / f"{name}.shp"
    schema = {"geometry": "Point", "properties": PLACE_SCHEMA}
    with fiona.open(
        shp,
        "w",
        driver="ESRI Shapefile",
        crs="EPSG:2326",
        schema=schema,
        encoding=encoding,
    ) as dst:
        for i in indexes:
            dst.write(
                {
                    "geometry": place_geometry(i, crs="EPSG:2326", geometry="Point"),
                    "properties": place_properties(i),
                }
            )
    return shp


#: Esri's WKT for Hong Kong 1980 Grid, as ArcGIS writes it in a .prj: no EPSG code.
ESRI_HK1980_PRJ = (
    'PROJCS["Hong_Kong_1980_Grid",GEOGCS["GCS_Hong_Kong_1980",'
    'DATUM["D_Hong_Kong_1980",SPHEROID["International_1924",6378388.0,297.0]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",836694.05],'
    'PARAMETER["False_Northing",819069.8],'
    'PARAMETER["Central_Meridian",114.1785555555556],'
    'PARAMETER["Scale_Factor",1.0],'
    'PARAMETER["Latitude_Of_Origin",22.31213333333334],UNIT["Meter",1.0]]'
)


def make_truncated_shapefile_zip(
    directory: Path, *, n: int = 25, cut: int = 30
) -> Path:
    """A zipped polygon Shapefile whose .shp lost its last ``cut`` bytes."""
    src = directory / "_truncated_parts"
    shp = make_shapefile(src, name="truncated", n=n, geometry="Polygon")
    with shp.open("r+b") as fh:
        fh.truncate(shp.stat().st_size - cut)
    archive = zip_files(directory / "truncated.zip", shapefile_parts(shp))
    shutil.rmtree(src)
    return archive


def make_geopackage(
    directory: Path,
    *,
    name: str = "data",
    layers: Mapping[str, str] | None = None,
    n: int = len(PLACES),
    crs: str = "EPSG:2326",
) -> Path:
    """A GeoPackage with one layer per ``layers`` entry (name -> geometry type).

    By default two layers: ``places`` (points) and ``districts`` (polygons).
    """
    layers = layers or {"places": "Point", "districts": "Polygon"}
    path = directory / f"{name}.gpkg"
    for layer, geometry in layers.items():
        schema = {"geometry": geometry, "properties": PLACE_SCHEMA}
        with fiona.open(
            path, "w", driver="GPKG", crs=crs, schema=schema, layer=layer
        ) as dst:
            dst.writerecords(
                {
                    "geometry": place_geometry(i, crs=crs, geometry=geometry),
                    "properties": place_properties(i),
                }
                for i in range(n)
            )
    return path


def make_geopackage_fields(
    directory: Path, properties: Mapping[str, str], rows: Sequence[Mapping[str, Any]]
) -> Path:
    """A one-layer GeoPackage of points with the given schema and attribute rows.

    Used for odd attribute names (SQL keywords, quotes, spaces, Chinese) and
    types (date, datetime, time, bool, int64).
    """
    path = directory / "fields.gpkg"
    schema = {"geometry": "Point", "properties": dict(properties)}
    with fiona.open(
        path, "w", driver="GPKG", crs="EPSG:2326", schema=schema, layer="fields"
    ) as dst:
        for i, row in enumerate(rows):
            dst.write(
                {
                    "geometry": place_geometry(i, crs="EPSG:2326", geometry="Point"),
                    "properties": dict(row),
                }
            )
    return path


def geojson_feature(
    geometry: Mapping[str, Any] | None, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """A GeoJSON Feature."""
    return {"type": "Feature", "properties": dict(properties), "geometry": geometry}


def write_geojson(
    path: Path, features: Sequence[Mapping[str, Any]], **members: Any
) -> Path:
    """Write a GeoJSON FeatureCollection (UTF-8, Chinese kept readable)."""
    doc = {"type": "FeatureCollection", **members, "features": list(features)}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def make_geojson(
    directory: Path,
    *,
    n: int = len(PLACES),
    geometry: str = "Point",
    name: str = "places",
) -> Path:
    """A GeoJSON file (WGS 84) of ``n`` sample places."""
    features = [
        geojson_feature(
            place_geometry(i, crs="EPSG:4326", geometry=geometry), place_properties(i)
        )
        for i in range(n)
    ]
    return write_geojson(directory / f"{name}.geojson", features)


def make_bad_geojson(directory: Path, *, n: int = 8) -> Path:
    """A GeoJSON file whose last feature has coordinates that are not numbers."""
    features = [
        geojson_feature(
            place_geometry(i, crs="EPSG:4326", geometry="Point"), {"ID": i + 1}
        )
        for i in range(n)
    ]
    features[-1]["geometry"] = {"type": "Point", "coordinates": ["east", "north"]}
    return write_geojson(directory / "bad.geojson", features)


def make_mixed_geojson(directory: Path) -> Path:
    """A GeoJSON file mixing points, a polygon and a line."""
    features = [
        geojson_feature(
            place_geometry(0, crs="EPSG:4326", geometry="Point"), {"ID": 1}
        ),
        geojson_feature(
            place_geometry(1, crs="EPSG:4326", geometry="Point"), {"ID": 2}
        ),
        geojson_feature(
            place_geometry(2, crs="EPSG:4326", geometry="Polygon"), {"ID": 3}
        ),
        geojson_feature(
            place_geometry(3, crs="EPSG:4326", geometry="LineString"), {"ID": 4}
        ),
    ]
    return write_geojson(directory / "mixed.geojson", features)


def make_csv(
    directory: Path,
    *,
    columns: Sequence[str] = ("name_en", "name_tc", "lon", "lat"),
    coordinates: str = "lonlat",
    n: int = len(PLACES),
    encoding: str = "utf-8",
    name: str = "places",
    extra: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """A CSV of sample places: names then two coordinate columns.

    ``coordinates`` is ``"lonlat"`` (WGS 84) or ``"hk1980"`` (easting,
    northing); the last two ``columns`` name the coordinate columns. ``extra``
    adds columns (name -> one text value per row).
    """
    extra = extra or {}
    header = [*columns, *extra]
    lines = [",".join(_csv_quote(h) for h in header)]
    for i in range(n):
        en, tc, lon, lat = place(i)
        x, y = (lon, lat) if coordinates == "lonlat" else hk80(lon, lat)
        values = [en, tc, f"{x:.6f}" if coordinates == "lonlat" else f"{x:.3f}"]
        values.append(f"{y:.6f}" if coordinates == "lonlat" else f"{y:.3f}")
        values += [col[i] for col in extra.values()]
        lines.append(",".join(_csv_quote(v) for v in values))
    path = directory / f"{name}.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _csv_quote(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def make_filegdb_zip(
    directory: Path,
    *,
    name: str = "survey",
    layers: Mapping[str, str] | None = None,
    n: int = len(PLACES),
) -> Path:
    """A zipped Esri File Geodatabase (written by GDAL's OpenFileGDB driver).

    By default one polygon layer ``lots`` in EPSG:2326 with ``NAME_EN``,
    ``NAME_TC``, ``ID`` and ``AREA_M2``.
    """
    layers = layers or {"lots": "Polygon"}
    gdb = directory / f"{name}.gdb"
    properties = {"ID": "int32", "NAME_EN": "str", "NAME_TC": "str", "AREA_M2": "float"}
    for layer, geometry in layers.items():
        # fiona's Env turns on PROJ's inverse-check, and the driver's extent
        # computation then trips over it when the collection is closed inside
        # a ``with``; opening and closing by hand avoids the spurious error.
        dst = fiona.open(
            gdb,
            "w",
            driver="OpenFileGDB",
            crs="EPSG:2326",
            schema={"geometry": geometry, "properties": properties},
            layer=layer,
        )
        try:
            for i in range(n):
                props = place_properties(i)
                dst.write(
                    {
                        "geometry": place_geometry(
                            i, crs="EPSG:2326", geometry=geometry
                        ),
                        "properties": {k: props[k] for k in properties},
                    }
                )
        finally:
            dst.close()
    archive = zip_files(directory / f"{name}.gdb.zip", [gdb])
    shutil.rmtree(gdb)
    return archive


# -- hostile and broken zips ----------------------------------------------------


def make_zip_with_member(directory: Path, member: str, data: bytes = b"x") -> Path:
    """A zip holding one member of the given name (e.g. ``../evil.txt``)."""
    archive = directory / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(member), data)
    return archive


def make_zip_slip(directory: Path) -> Path:
    """A zip whose member ``../evil.txt`` would land outside the target."""
    return make_zip_with_member(directory, "../evil.txt", b"owned")


def make_zip_absolute(directory: Path) -> Path:
    """A zip whose member has an absolute path, ``/tmp/evil.txt``."""
    return make_zip_with_member(directory, "/tmp/evil.txt", b"owned")


def make_zip_symlink(directory: Path) -> Path:
    """A zip holding a symbolic link ``passwd -> /etc/passwd``."""
    archive = directory / "symlink.zip"
    info = zipfile.ZipInfo("passwd")
    info.create_system = 3  # Unix, so that external_attr carries the mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    return archive


def make_zip_bomb(directory: Path, *, size: int = 50 * 1024 * 1024) -> Path:
    """A small zip whose one member inflates to ``size`` bytes of zeros."""
    archive = directory / "bomb.zip"
    chunk = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return archive


def make_lying_zip(
    directory: Path, *, size: int = 4 * 1024 * 1024, claimed: int = 10
) -> Path:
    """A zip whose member says it is ``claimed`` bytes but inflates to ``size``.

    Both the local header and the central directory are patched, as an
    attacker would.
    """
    archive = directory / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.bin", b"\x00" * size)
    raw = bytearray(archive.read_bytes())
    packed = struct.pack("<I", size)
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    # uncompressed size: offset 22 in the local header, 24 in the central one
    assert raw[local + 22 : local + 26] == packed
    assert raw[central + 24 : central + 28] == packed
    raw[local + 22 : local + 26] = struct.pack("<I", claimed)
    raw[central + 24 : central + 28] = struct.pack("<I", claimed)
    archive.write_bytes(bytes(raw))
    return archive


def make_fake_zip(directory: Path) -> Path:
    """A text file renamed to ``.zip``."""
    path = directory / "notazip.zip"
    path.write_text("this is not a zip archive\n")
    return path


def make_empty_zip(directory: Path) -> Path:
    """A valid zip with no members at all."""
    archive = directory / "empty.zip"
    with zipfile.ZipFile(archive, "w"):
        pass
    return archive


def make_encrypted_zip(directory: Path) -> Path:
    """A zip whose member is flagged as encrypted (traditional PKWARE).

    The content is not really encrypted; the flag alone must make the reader
    refuse it.
    """
    archive = directory / "encrypted.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("secret.geojson", b"{}")
    raw = bytearray(archive.read_bytes())
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    raw[local + 6] |= 0x1  # general purpose flags: offset 6 local, 8 central
    raw[central + 8] |= 0x1
    archive.write_bytes(bytes(raw))
    return archive


def make_many_members_zip(directory: Path, count: int) -> Path:
    """A zip with ``count`` tiny members."""
    archive = directory / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(count):
            zf.writestr(f"f{i}.txt", b"x")
    return archive


# -- helpers for end-to-end ingestion tests --------------------------------------


def make_places_shapefile_zip(
    directory: Path,
    indexes: Sequence[int],
    *,
    name: str = "places",
    renamed: Mapping[int, str] | None = None,
    moved: Mapping[int, tuple[float, float]] | None = None,
) -> Path:
    """A zipped point Shapefile (EPSG:2326, UTF-8) of the chosen sample places.

    For a later version of a layer whose diff is known: ``renamed`` gives
    place i a new Chinese name, ``moved`` shifts it by (east, north) metres.
    """
    renamed = renamed or {}
    moved = moved or {}
    src = directory / f"_{name}_parts"
    src.mkdir(parents=True, exist_ok=True)
    shp = src / f"{name}.shp"
    schema = {"geometry": "Point", "properties": PLACE_SCHEMA}
    with fiona.open(
        shp,
        "w",
        driver="ESRI Shapefile",
        crs="EPSG:2326",
        schema=schema,
        encoding="utf-8",
    ) as dst:
        for i in indexes:
            props = place_properties(i)
            if i in renamed:
                props["NAME_TC"] = renamed[i]
            e, n = hk80(*place(i)[2:])
            de, dn = moved.get(i, (0.0, 0.0))
            dst.write(
                {
                    "geometry": {"type": "Point", "coordinates": (e + de, n + dn)},
                    "properties": props,
                }
            )
    archive = zip_files(directory / f"{name}.zip", shapefile_parts(shp))
    shutil.rmtree(src)
    return archive


def make_empty_file(directory: Path, name: str) -> Path:
    """A 0-byte file called ``name``."""
    path = directory / name
    path.write_bytes(b"")
    return path


def make_zip_in_zip(directory: Path, inner: Path, *, name: str = "outer.zip") -> Path:
    """A zip holding the zip ``inner`` (as agencies' download portals produce)."""
    return zip_files(directory / name, [inner])
