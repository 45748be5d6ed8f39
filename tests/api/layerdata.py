"""Versioned layer tables for the serving tests, by SQL to the documented layout.

Use them on an autocommit connection (:func:`connect`): the API under test
reads through its own connections, so every helper commits what it writes.
The loader (``sdi.ingest``) is tested on its own; these helpers build tables
exactly as docs/architecture.md describes them (``_sdi_fid``, ``_sdi_key``,
``_sdi_hash``, ``_sdi_from``, ``_sdi_to``, ``_sdi_geom`` and the attributes),
so the publish/provider/API tests control every row and version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from sdi import registry
from sdi.errors import NotFoundError

Conn = psycopg.Connection[Any]

#: Attributes of the test buildings layer: (name, PostgreSQL type), file order.
BUILDING_FIELDS: list[tuple[str, str]] = [
    ("BLDG_ID", "text"),
    ("NAME_EN", "text"),
    ("NAME_TC", "text"),
    ("FLOORS", "bigint"),
    ("HEIGHT_M", "double precision"),
    ("OPENED", "date"),
    ("GREEN_%", "double precision"),
]


@dataclass
class Feat:
    """One feature state: identity key, attributes, WKT in the storage SRID."""

    key: str
    props: dict[str, Any]
    wkt: str | None


def building(i: int, *, suffix: str = "") -> Feat:
    """Building ``i``: a point in Kowloon/Hong Kong Island with bilingual names."""
    lon = 114.15 + (i % 5) * 0.01 + i * 0.0001
    lat = 22.28 + (i // 5) * 0.01
    return Feat(
        key=f"B{i:04d}",
        props={
            "BLDG_ID": f"B{i:04d}",
            "NAME_EN": f"Building {i}{suffix}",
            "NAME_TC": f"大廈{i}號{'（新）' if suffix else ''}",
            "FLOORS": i % 40 + 1,
            "HEIGHT_M": round(i * 3.5 + 0.25, 2),
            "OPENED": dt.date(2000 + i % 20, 1 + i % 12, 1),
            "GREEN_%": None if i % 7 == 0 else i / 100,
        },
        wkt=f"POINT({lon:.6f} {lat:.6f})",
    )


def buildings(ids: range, *, renamed: frozenset[int] = frozenset()) -> list[Feat]:
    """Buildings with the given numbers; ``renamed`` ones carry a changed name."""
    return [building(i, suffix=" (new)" if i in renamed else "") for i in ids]


def ensure_agency(conn: Conn, code: str = "landsd") -> registry.Agency:
    """The agency ``code``, created with bilingual names when missing."""
    try:
        return registry.get_agency(conn, code)
    except NotFoundError:
        pass
    names = {
        "landsd": ("Lands Department", "地政總署"),
        "td": ("Transport Department", "運輸署"),
    }
    en, zh = names.get(code, (code.upper(), ""))
    return registry.create_agency(conn, code, en, zh, f"gis@{code}.gov.hk")


def create_layer(
    conn: Conn,
    slug: str,
    *,
    agency: str = "landsd",
    fields: list[tuple[str, str]] | None = None,
    visibility: str = "public",
    licence: str = "hk-csdi",
    title_en: str = "Buildings",
    title_zh: str = "建築物",
    srid: int = 4326,
    time_column: str | None = None,
) -> registry.Layer:
    """Register a layer and create its empty versioned table."""
    owner = ensure_agency(conn, agency)
    layer = registry.create_layer(
        conn,
        owner,
        registry.LayerInput(
            slug=slug,
            title_en=title_en,
            title_zh=title_zh,
            abstract_en="Building footprints for testing.",
            abstract_zh="測試用建築物資料。",
            keywords=["buildings", "建築物"],
            theme="structure",
            licence_id=registry.get_licence(conn, licence).id,
            visibility=visibility,
            key_column="BLDG_ID",
            time_column=time_column,
        ),
    )
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
        for name, pg_type in (fields if fields is not None else BUILDING_FIELDS)
    ]
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} ("
                " _sdi_fid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                " _sdi_key text NOT NULL, _sdi_hash uuid NOT NULL,"
                " _sdi_from integer NOT NULL, _sdi_to integer,"
                " _sdi_geom geometry(Geometry, {}){})"
            ).format(
                sql.Identifier("sdi_data", slug),
                sql.Literal(srid),
                sql.SQL("").join(sql.SQL(", ") + c for c in columns),
            )
        )
    return layer


def connect(db_url: str) -> Conn:
    """An autocommit connection: each helper's transaction is committed at once."""
    return psycopg.connect(db_url, autocommit=True)


def _hash(feat: Feat) -> uuid.UUID:
    text = json.dumps([feat.wkt, feat.props], sort_keys=True, default=str)
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())  # noqa: S324 (identity)


def add_version(
    conn: Conn, slug: str, feats: list[Feat], *, publish: bool = True
) -> registry.Version:
    """Record ``feats`` as the layer's next version, as the loader would.

    Rows of features that changed or vanished are closed, new states are
    inserted, unchanged rows are left alone; then the version row is written
    (and the version published unless ``publish`` is False).
    """
    table = sql.Identifier("sdi_data", slug)
    with conn.transaction():
        layer = registry.get_layer(conn, slug, for_update=True)
        number = registry.latest_version_number(conn, layer.id) + 1
        names = list(feats[0].props) if feats else []
        srid_row = conn.execute(
            "SELECT srid FROM geometry_columns WHERE f_table_schema = 'sdi_data' "
            "AND f_table_name = %s",
            (slug,),
        ).fetchone()
        assert srid_row is not None
        srid = int(srid_row[0])
        wanted = {(f.key, _hash(f)) for f in feats}
        current = conn.execute(
            sql.SQL(
                "SELECT _sdi_fid, _sdi_key, _sdi_hash FROM {} WHERE _sdi_to IS NULL"
            ).format(table)
        ).fetchall()
        open_states = set()
        for fid, key, digest in current:
            if (key, digest) in wanted:
                open_states.add((key, digest))
            else:
                conn.execute(
                    sql.SQL("UPDATE {} SET _sdi_to = %s WHERE _sdi_fid = %s").format(
                        table
                    ),
                    (number, fid),
                )
        insert = sql.SQL(
            "INSERT INTO {} (_sdi_key, _sdi_hash, _sdi_from, _sdi_geom{}) "
            "VALUES (%s, %s, %s, ST_GeomFromText(%s, {}){})"
        ).format(
            table,
            # "%" doubled: the statement has parameters (psycopg placeholders)
            sql.SQL("").join(
                sql.SQL(", ") + sql.Identifier(n.replace("%", "%%")) for n in names
            ),
            sql.Literal(srid),
            sql.SQL("").join(sql.SQL(", %s") for _ in names),
        )
        added = 0
        for feat in feats:
            digest = _hash(feat)
            if (feat.key, digest) in open_states:
                continue
            conn.execute(
                insert,
                (feat.key, digest, number, feat.wkt, *[feat.props[n] for n in names]),
            )
            added += 1
        box = conn.execute(
            sql.SQL(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ("
                " SELECT ST_Transform(ST_SetSRID(ST_Extent(_sdi_geom)::geometry, {}),"
                " 4326) AS b FROM {}"
                " WHERE _sdi_from <= %s AND (_sdi_to IS NULL OR _sdi_to > %s)) e"
            ).format(sql.Literal(srid), table),
            (number, number),
        ).fetchone()
        assert box is not None
        types = conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod), a.attname FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0",
            (f"sdi_data.{slug}",),
        ).fetchall()
        type_of = {name: typ for typ, name in types}
        version = registry.insert_version(
            conn,
            layer_id=layer.id,
            number=number,
            source_filename=f"{slug}_v{number}.geojson",
            source_sha256="0" * 64,
            source_format="GeoJSON",
            source_layer=None,
            source_crs=f"EPSG:{srid}",
            source_encoding="UTF-8",
            feature_count=len(feats),
            geometry_type="Point",
            extent=[float(v) for v in box] if box[0] is not None else None,
            schema={
                "fields": [{"name": n, "type": type_of[n]} for n in names],
                "geometry_type": "Point",
                "srid": srid,
            },
            diff={"added": added},
        )
    if publish:
        registry.publish(conn, slug, number)
    return version


def buildings_layer(conn: Conn, slug: str = "landsd_buildings", n: int = 25) -> None:
    """A published layer of ``n`` buildings (version 1)."""
    create_layer(conn, slug)
    add_version(conn, slug, buildings(range(n)))
