"""Write one version of a layer to a GeoPackage or GeoJSON file with fiona.

Version N is the rows with ``_sdi_from <= N AND (_sdi_to IS NULL OR _sdi_to >
N)``; its columns are those of the version's ``schema`` (later uploads may
have added others to the table). Geometries leave in WGS 84 longitude /
latitude (EPSG:4326), attribute names and text exactly as stored (UTF-8).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiona
import shapely
from fiona import Feature, Geometry, Properties
from psycopg import Connection, sql

from sdi.errors import BadInputError
from sdi.registry.models import Layer, Version

__all__ = ["FORMATS", "ExportFormat", "export_version", "version_rows"]

LOGGER = logging.getLogger(__name__)

_DATA_SCHEMA = "sdi_data"
_BATCH = 5_000


@dataclass(frozen=True)
class ExportFormat:
    """A download format."""

    name: str
    driver: str
    suffix: str
    media_type: str
    options: tuple[tuple[str, str], ...] = ()


#: The formats a version can be downloaded in, by the name used in URLs.
FORMATS: dict[str, ExportFormat] = {
    "gpkg": ExportFormat("gpkg", "GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "geojson": ExportFormat(
        "geojson",
        "GeoJSON",
        ".geojson",
        "application/geo+json",
        # RFC 7946: longitude/latitude, 7 decimals (about 1 cm).
        (("RFC7946", "YES"),),
    ),
}

# PostgreSQL column type -> fiona field type, per driver where they differ.
_FIONA_TYPES = {
    "text": "str",
    "bigint": "int",
    "double precision": "float",
    "boolean": "bool",
    "date": "date",
    "timestamp": "datetime",
    "time": "time",
}
_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
}


def _fields(version: Version) -> list[tuple[str, str]]:
    return [(f["name"], f["type"]) for f in version.schema.get("fields", [])]


def _fiona_schema(version: Version, fmt: ExportFormat) -> dict[str, Any]:
    properties = {}
    for name, pg_type in _fields(version):
        kind = _FIONA_TYPES.get(pg_type, "str")
        if kind == "time" and fmt.driver == "GPKG":
            kind = "str"  # GeoPackage has no time type
        properties[name] = kind
    geometry = version.schema.get("geometry_type") or version.geometry_type
    return {
        "geometry": geometry if geometry in _GEOMETRY_TYPES else "Unknown",
        "properties": properties,
    }


def version_rows(
    conn: Connection[Any], layer: Layer, version: Version, *, srid: int
) -> Iterator[tuple[bytes | None, tuple[Any, ...]]]:
    """(WKB in EPSG:4326 or None, attribute values) of each feature of a version.

    Read through a server-side cursor in batches, in feature-id order; must
    run inside a transaction (the caller's).
    """
    columns = [sql.Identifier(name) for name, _ in _fields(version)]
    geom: sql.Composable = sql.Identifier("_sdi_geom")
    if srid != 4326:
        geom = sql.SQL("ST_Transform({}, 4326)").format(geom)
    query = sql.SQL(
        "SELECT ST_AsBinary({geom}){columns} FROM {table}"
        " WHERE _sdi_from <= %(n)s AND (_sdi_to IS NULL OR _sdi_to > %(n)s)"
        " ORDER BY _sdi_fid"
    ).format(
        geom=geom,
        columns=sql.SQL("").join(sql.SQL(", ") + c for c in columns),
        table=sql.Identifier(_DATA_SCHEMA, layer.slug),
    )
    with conn.cursor(name=f"sdi_export_{layer.id}_{version.number}") as cur:
        cur.itersize = _BATCH
        cur.execute(query, {"n": version.number})
        for row in cur:
            wkb = row[0]
            yield (bytes(wkb) if wkb is not None else None), tuple(row[1:])


def _features(
    rows: Sequence[tuple[bytes | None, tuple[Any, ...]]],
    names: list[str],
    time_as_text: bool,
) -> list[Feature]:
    geoms = shapely.from_wkb([wkb for wkb, _ in rows])
    out = []
    for geom, (_, values) in zip(geoms, rows, strict=True):
        if time_as_text:
            values = tuple(
                v.isoformat() if isinstance(v, dt.time) else v for v in values
            )
        geometry = (
            Geometry.from_dict(shapely.geometry.mapping(geom))
            if geom is not None
            else None
        )
        out.append(
            Feature(
                geometry=geometry,
                properties=Properties.from_dict(dict(zip(names, values, strict=True))),
            )
        )
    return out


def export_version(
    conn: Connection[Any],
    layer: Layer,
    version: Version,
    fmt: str,
    directory: Path,
    *,
    srid: int,
) -> Path:
    """Write ``version`` of ``layer`` into a new file in ``directory``.

    ``fmt`` is a key of :data:`FORMATS`; ``srid`` is the storage SRID of the
    layer table. Returns the file's path (named ``<slug>_v<N><suffix>``, in a
    fresh sub-directory the caller removes).
    """
    try:
        spec = FORMATS[fmt]
    except KeyError:
        raise BadInputError(
            f"Unknown download format {fmt!r}; choose one of {', '.join(FORMATS)}."
        ) from None
    names = [name for name, _ in _fields(version)]
    options = dict(spec.options)
    if spec.driver == "GPKG" and any(n.lower() == "fid" for n in names):
        # An attribute called fid would clash with the GeoPackage's own id column.
        options["FID"] = "gpkg_fid"
    out_dir = Path(tempfile.mkdtemp(prefix="export-", dir=directory))
    path = out_dir / f"{layer.slug}_v{version.number}{spec.suffix}"
    time_as_text = spec.driver == "GPKG"
    count = 0
    try:
        with (
            conn.transaction(),
            fiona.open(
                path,
                "w",
                driver=spec.driver,
                crs="EPSG:4326",
                schema=_fiona_schema(version, spec),
                layer=layer.slug if spec.driver == "GPKG" else None,
                encoding="utf-8",
                **options,
            ) as dst,
        ):
            batch: list[tuple[bytes | None, tuple[Any, ...]]] = []
            for row in version_rows(conn, layer, version, srid=srid):
                batch.append(row)
                if len(batch) >= _BATCH:
                    dst.writerecords(_features(batch, names, time_as_text))
                    count += len(batch)
                    batch = []
            if batch:
                dst.writerecords(_features(batch, names, time_as_text))
                count += len(batch)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    LOGGER.info(
        "exported %s v%d: %d features to %s", layer.slug, version.number, count, path
    )
    return path
