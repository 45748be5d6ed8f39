"""CQL2 filters to SQL, run on a real PostGIS table, checked against Python.

Every filter runs in text and (where given) JSON form; the expected ids are
computed independently from the same rows with plain Python and shapely.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from pygeofilter.parsers.cql2_text import parse as stock_text_parse
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from sdi.db import Cluster
from sdi.errors import BadInputError
from sdi.providers.cql2 import Cql2Error, filter_sql, parse_filter
from tests.conftest import TEMPLATE

Conn = psycopg.Connection[Any]
TABLE = "cql_test"
TABLE_2326 = "cql_test_2326"
HOSTILE = 'x") OR 1=1 --'

FIELDS: dict[str, dict[str, Any]] = {
    "NAME_EN": {"type": "string"},
    "名稱": {"type": "string"},
    "FLOORS": {"type": "integer"},
    "HEIGHT_M": {"type": "number"},
    "OPENED": {"type": "string", "format": "date"},
    "UPDATED": {"type": "string", "format": "date-time"},
    "IS_OPEN": {"type": "boolean"},
    "GREEN_%": {"type": "number"},
    "Zone Code": {"type": "string"},
    HOSTILE: {"type": "string"},
}
PG_TYPES = {
    "NAME_EN": "text",
    "名稱": "text",
    "FLOORS": "bigint",
    "HEIGHT_M": "double precision",
    "OPENED": "date",
    "UPDATED": "timestamp",
    "IS_OPEN": "boolean",
    "GREEN_%": "double precision",
    "Zone Code": "text",
    HOSTILE: "text",
}

VICTORIA_PARK = (
    "POLYGON((114.186 22.280, 114.192 22.280, 114.192 22.285, "
    "114.186 22.285, 114.186 22.280))"
)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# fid: (attributes, WKT in EPSG:4326 lon/lat)
ROWS: dict[int, tuple[dict[str, Any], str | None]] = {
    1: (
        dict(
            NAME_EN="Central Tower",
            名稱="中環大廈",
            FLOORS=40,
            HEIGHT_M=180.5,
            OPENED=dt.date(2005, 6, 1),
            UPDATED=_ts("2020-01-01T08:00:00"),
            IS_OPEN=True,
            **{"GREEN_%": 0.1, "Zone Code": "A1", HOSTILE: "h1"},
        ),
        "POINT(114.158 22.282)",
    ),
    2: (
        dict(
            NAME_EN="Admiralty Centre",
            名稱="金鐘中心",
            FLOORS=25,
            HEIGHT_M=95.0,
            OPENED=dt.date(1980, 3, 15),
            UPDATED=_ts("2019-05-05T12:00:00"),
            IS_OPEN=True,
            **{"GREEN_%": None, "Zone Code": "A2", HOSTILE: None},
        ),
        "POINT(114.165 22.279)",
    ),
    3: (
        dict(
            NAME_EN="Mong Kok Plaza",
            名稱="旺角廣場",
            FLOORS=12,
            HEIGHT_M=48.25,
            OPENED=dt.date(2012, 11, 30),
            UPDATED=None,
            IS_OPEN=False,
            **{"GREEN_%": 0.35, "Zone Code": "K1", HOSTILE: "h3"},
        ),
        "POINT(114.169 22.319)",
    ),
    4: (
        dict(
            NAME_EN="Tsim Sha Tsui Pier",
            名稱="尖沙咀碼頭",
            FLOORS=2,
            HEIGHT_M=9.5,
            OPENED=None,
            UPDATED=_ts("2021-07-01T00:00:00"),
            IS_OPEN=False,
            **{"GREEN_%": 0.0, "Zone Code": "K2", HOSTILE: None},
        ),
        "POINT(114.168 22.294)",
    ),
    5: (
        dict(
            NAME_EN="Victoria Park",
            名稱="維多利亞公園",
            FLOORS=None,
            HEIGHT_M=None,
            OPENED=dt.date(1957, 10, 1),
            UPDATED=_ts("2018-01-01T00:00:00"),
            IS_OPEN=True,
            **{"GREEN_%": 0.9, "Zone Code": "B1", HOSTILE: None},
        ),
        VICTORIA_PARK,
    ),
    6: (
        dict(
            NAME_EN="Tramway",
            名稱="電車路線",
            FLOORS=0,
            HEIGHT_M=0.0,
            OPENED=dt.date(1904, 7, 30),
            UPDATED=_ts("2022-03-04T05:06:07"),
            IS_OPEN=True,
            **{"GREEN_%": None, "Zone Code": None, HOSTILE: None},
        ),
        "LINESTRING(114.14 22.285, 114.20 22.283)",
    ),
    7: (
        dict(
            NAME_EN="O'Brien's Bar",
            名稱=None,
            FLOORS=3,
            HEIGHT_M=10.0,
            OPENED=dt.date(2010, 1, 1),
            UPDATED=_ts("2010-01-01T00:00:00"),
            IS_OPEN=None,
            **{"GREEN_%": 0.05, "Zone Code": "A1", HOSTILE: None},
        ),
        "POINT(114.155 22.281)",
    ),
    8: (
        dict(
            NAME_EN="100% Pure",
            名稱="",
            FLOORS=5,
            HEIGHT_M=20.0,
            OPENED=dt.date(2010, 1, 2),
            UPDATED=_ts("2015-06-30T23:59:59"),
            IS_OPEN=True,
            **{"GREEN_%": 0.5, "Zone Code": "K1", HOSTILE: None},
        ),
        "POINT(114.172 22.297)",
    ),
    9: (dict.fromkeys(FIELDS), None),
    10: (
        dict(
            NAME_EN="Lantau Lodge",
            名稱="大嶼山旅舍",
            FLOORS=1,
            HEIGHT_M=5.5,
            OPENED=dt.date(1999, 12, 31),
            UPDATED=_ts("2000-01-01T00:00:00"),
            IS_OPEN=False,
            **{"GREEN_%": 0.7, "Zone Code": "L1", HOSTILE: None},
        ),
        "POINT(113.95 22.26)",
    ),
    11: (
        dict(
            NAME_EN="x' OR 1=1 --",
            名稱=None,
            FLOORS=7,
            HEIGHT_M=21.0,
            OPENED=dt.date(2001, 1, 1),
            UPDATED=None,
            IS_OPEN=False,
            **{"GREEN_%": None, "Zone Code": "Z9", HOSTILE: None},
        ),
        "POINT(114.21 22.33)",
    ),
    12: (
        dict(
            NAME_EN="Twin Islands",
            名稱="雙島",
            FLOORS=None,
            HEIGHT_M=1.0,
            OPENED=dt.date(2010, 1, 1),
            UPDATED=_ts("2010-01-01T12:00:00"),
            IS_OPEN=None,
            **{"GREEN_%": 1.0, "Zone Code": "K2", HOSTILE: None},
        ),
        "MULTIPOLYGON(((114.25 22.25, 114.26 22.25, 114.26 22.26, 114.25 22.26, "
        "114.25 22.25)), ((114.27 22.25, 114.28 22.25, 114.28 22.26, "
        "114.27 22.26, 114.27 22.25)))",
    ),
}
GEOMS: dict[int, BaseGeometry | None] = {
    fid: (shapely.from_wkt(wkt) if wkt else None) for fid, (_, wkt) in ROWS.items()
}


def ids(predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
    """Rows whose attributes satisfy ``predicate`` (None-safe by construction)."""
    return sorted(fid for fid, (props, _) in ROWS.items() if predicate(props))


def geo_ids(predicate: Callable[[BaseGeometry], bool]) -> list[int]:
    """Rows with a geometry that satisfies ``predicate``."""
    return sorted(fid for fid, g in GEOMS.items() if g is not None and predicate(g))


def nn(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: all(p[n] is not None for n in names)


# -- the database --------------------------------------------------------------
@pytest.fixture(scope="module")
def table(pg_cluster: Cluster) -> Iterator[Conn]:
    """One database for the module with the test table filled (read-only)."""
    name = f"cql_{os.getpid()}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    conn = psycopg.connect(pg_cluster.url(name), autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    names = list(FIELDS)
    columns = sql.SQL("").join(
        sql.SQL(", {} {}").format(sql.Identifier(n), sql.SQL(PG_TYPES[n]))
        for n in names
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (_sdi_fid bigint PRIMARY KEY, _sdi_key text NOT NULL,"
            " _sdi_hash uuid NOT NULL DEFAULT gen_random_uuid(),"
            " _sdi_from integer NOT NULL DEFAULT 1, _sdi_to integer,"
            " _sdi_repaired boolean NOT NULL DEFAULT false,"
            " _sdi_geom geometry(Geometry, 4326){})"
        ).format(sql.Identifier("sdi_data", TABLE), columns)
    )
    insert = sql.SQL(
        "INSERT INTO {} (_sdi_fid, _sdi_key, _sdi_geom{}) "
        "VALUES (%s, %s, ST_GeomFromText(%s, 4326){})"
    ).format(
        sql.Identifier("sdi_data", TABLE),
        sql.SQL("").join(
            sql.SQL(", ") + sql.Identifier(n.replace("%", "%%")) for n in names
        ),
        sql.SQL("").join(sql.SQL(", %s") for _ in names),
    )
    for fid, (props, wkt) in ROWS.items():
        conn.execute(insert, [fid, f"k{fid}", wkt, *(props[n] for n in names)])
    # The same rows stored in EPSG:2326 (Hong Kong 1980 Grid).
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} AS SELECT _sdi_fid, "
            "ST_Transform(_sdi_geom, 2326)::geometry(Geometry, 2326) AS _sdi_geom "
            "FROM {}"
        ).format(
            sql.Identifier("sdi_data", TABLE_2326), sql.Identifier("sdi_data", TABLE)
        )
    )
    try:
        yield conn
    finally:
        conn.close()
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


def run(
    conn: Conn,
    text: str,
    lang: str | None = None,
    *,
    srid: int = 4326,
    **options: Any,
) -> list[int]:
    """Ids of the rows matching ``text`` (a filter in ``lang``)."""
    params: dict[str, Any] = {}
    where = filter_sql(
        parse_filter(text, lang), fields=FIELDS, srid=srid, params=params, **options
    )
    name = TABLE if srid == 4326 else TABLE_2326
    statement = sql.SQL("SELECT t._sdi_fid FROM {} AS t WHERE {} ORDER BY 1").format(
        sql.Identifier("sdi_data", name), where
    )
    return [row[0] for row in conn.execute(statement, params).fetchall()]


def prop(name: str) -> dict[str, str]:
    return {"property": name}


def op(name: str, *args: Any) -> str:
    return json.dumps({"op": name, "args": list(args)})


@dataclass
class Case:
    text: str
    expected: list[int]
    json: str | None = None


CASES: dict[str, Case] = {
    "equal string": Case(
        "\"NAME_EN\" = 'Central Tower'",
        [1],
        op("=", prop("NAME_EN"), "Central Tower"),
    ),
    "not equal skips nulls": Case(
        "NAME_EN <> 'Central Tower'",
        ids(lambda p: p["NAME_EN"] is not None and p["NAME_EN"] != "Central Tower"),
        op("<>", prop("NAME_EN"), "Central Tower"),
    ),
    "integer greater": Case(
        "FLOORS > 10",
        ids(lambda p: nn("FLOORS")(p) and p["FLOORS"] > 10),
        op(">", prop("FLOORS"), 10),
    ),
    "integer range with AND": Case(
        "FLOORS >= 2 AND FLOORS <= 12",
        ids(lambda p: nn("FLOORS")(p) and 2 <= p["FLOORS"] <= 12),
        json.dumps(
            {
                "op": "and",
                "args": [
                    {"op": ">=", "args": [prop("FLOORS"), 2]},
                    {"op": "<=", "args": [prop("FLOORS"), 12]},
                ],
            }
        ),
    ),
    "float less": Case(
        "HEIGHT_M < 50.5",
        ids(lambda p: nn("HEIGHT_M")(p) and p["HEIGHT_M"] < 50.5),
        op("<", prop("HEIGHT_M"), 50.5),
    ),
    "integer field, string literal": Case(
        "FLOORS = '25'", [2], op("=", prop("FLOORS"), "25")
    ),
    "string field, number literal": Case(
        '"Zone Code" <> 5',
        ids(lambda p: p["Zone Code"] is not None),
        op("<>", prop("Zone Code"), 5),
    ),
    "literal on the left": Case(
        "10 < FLOORS", ids(lambda p: nn("FLOORS")(p) and p["FLOORS"] > 10)
    ),
    "date literal": Case(
        "\"OPENED\" > DATE('2010-01-01')",
        ids(lambda p: nn("OPENED")(p) and p["OPENED"] > dt.date(2010, 1, 1)),
        op(">", prop("OPENED"), {"date": "2010-01-01"}),
    ),
    "date as a string": Case(
        "OPENED > '2010-01-01'",
        ids(lambda p: nn("OPENED")(p) and p["OPENED"] > dt.date(2010, 1, 1)),
        op(">", prop("OPENED"), "2010-01-01"),
    ),
    "date equal": Case(
        "OPENED = DATE('2010-01-01')", [7, 12], op("=", prop("OPENED"), "2010-01-01")
    ),
    "timestamp": Case(
        "UPDATED >= TIMESTAMP('2020-01-01T08:00:00Z')",
        ids(lambda p: nn("UPDATED")(p) and p["UPDATED"] >= _ts("2020-01-01T08:00")),
        op(">=", prop("UPDATED"), {"timestamp": "2020-01-01T08:00:00Z"}),
    ),
    "timestamp field, date literal": Case(
        "UPDATED < DATE('2010-01-02')",
        ids(lambda p: nn("UPDATED")(p) and p["UPDATED"] < _ts("2010-01-02T00:00")),
    ),
    "boolean true": Case(
        "IS_OPEN = TRUE",
        ids(lambda p: p["IS_OPEN"] is True),
        op("=", prop("IS_OPEN"), True),
    ),
    "boolean false": Case("IS_OPEN = false", ids(lambda p: p["IS_OPEN"] is False)),
    "boolean as a string": Case(
        "IS_OPEN = 'true'", ids(lambda p: p["IS_OPEN"] is True)
    ),
    "boolean not true": Case(
        "NOT IS_OPEN = TRUE", ids(lambda p: p["IS_OPEN"] is False)
    ),
    "like prefix": Case(
        "NAME_EN LIKE 'M%'",
        ids(lambda p: nn("NAME_EN")(p) and p["NAME_EN"].startswith("M")),
        op("like", prop("NAME_EN"), "M%"),
    ),
    "like suffix": Case("NAME_EN LIKE '%Tower'", [1]),
    "like single character": Case(
        "NAME_EN LIKE '_dmiralty%'", [2], op("like", prop("NAME_EN"), "_dmiralty%")
    ),
    "like a dot is a dot": Case("NAME_EN LIKE 'Central.Tower'", []),
    "like escaped percent": Case("NAME_EN LIKE '100\\% %'", [8]),
    "not like": Case(
        "NAME_EN NOT LIKE '%a%'",
        ids(lambda p: nn("NAME_EN")(p) and "a" not in p["NAME_EN"]),
        json.dumps(
            {"op": "not", "args": [{"op": "like", "args": [prop("NAME_EN"), "%a%"]}]}
        ),
    ),
    "like on a number": Case(
        "FLOORS LIKE '4%'",
        ids(lambda p: nn("FLOORS")(p) and str(p["FLOORS"]).startswith("4")),
        op("like", prop("FLOORS"), "4%"),
    ),
    "like on a date": Case("OPENED LIKE '2010-%'", [7, 8, 12]),
    "casei like": Case(
        "CASEI(NAME_EN) LIKE CASEI('central%')",
        [1],
        op(
            "like",
            {"op": "casei", "args": [prop("NAME_EN")]},
            {"op": "casei", "args": ["central%"]},
        ),
    ),
    "casei equal": Case(
        "CASEI(NAME_EN) = CASEI('TRAMWAY')",
        [6],
        op(
            "=",
            {"op": "casei", "args": [prop("NAME_EN")]},
            {"op": "casei", "args": ["TRAMWAY"]},
        ),
    ),
    "in strings": Case(
        "\"Zone Code\" IN ('A1', 'K1')",
        ids(lambda p: p["Zone Code"] in ("A1", "K1")),
        op("in", prop("Zone Code"), ["A1", "K1"]),
    ),
    "not in strings": Case(
        "\"Zone Code\" NOT IN ('A1', 'K1')",
        ids(
            lambda p: p["Zone Code"] is not None and p["Zone Code"] not in ("A1", "K1")
        ),
        json.dumps(
            {
                "op": "not",
                "args": [{"op": "in", "args": [prop("Zone Code"), ["A1", "K1"]]}],
            }
        ),
    ),
    "in integers": Case(
        "FLOORS IN (2, 3, 40)",
        ids(lambda p: p["FLOORS"] in (2, 3, 40)),
        op("in", prop("FLOORS"), [2, 3, 40]),
    ),
    "in dates as strings": Case("OPENED IN ('2010-01-01', '1957-10-01')", [5, 7, 12]),
    "between": Case(
        "FLOORS BETWEEN 3 AND 25",
        ids(lambda p: nn("FLOORS")(p) and 3 <= p["FLOORS"] <= 25),
        op("between", prop("FLOORS"), 3, 25),
    ),
    "between, draft json form": Case(
        "FLOORS BETWEEN 3 AND 25",
        ids(lambda p: nn("FLOORS")(p) and 3 <= p["FLOORS"] <= 25),
        op("between", prop("FLOORS"), [3, 25]),
    ),
    "not between": Case(
        "FLOORS NOT BETWEEN 3 AND 25",
        ids(lambda p: nn("FLOORS")(p) and not 3 <= p["FLOORS"] <= 25),
    ),
    "between dates": Case(
        "OPENED BETWEEN DATE('2000-01-01') AND '2010-01-01'",
        ids(
            lambda p: (
                nn("OPENED")(p)
                and dt.date(2000, 1, 1) <= p["OPENED"] <= dt.date(2010, 1, 1)
            )
        ),
    ),
    "is null": Case(
        '"GREEN_%" IS NULL',
        ids(lambda p: p["GREEN_%"] is None),
        op("isNull", prop("GREEN_%")),
    ),
    "is not null": Case(
        '"GREEN_%" IS NOT NULL',
        ids(lambda p: p["GREEN_%"] is not None),
        json.dumps(
            {"op": "not", "args": [{"op": "isNull", "args": [prop("GREEN_%")]}]}
        ),
    ),
    "percent in a column name": Case(
        '"GREEN_%" > 0.3',
        ids(lambda p: nn("GREEN_%")(p) and p["GREEN_%"] > 0.3),
        op(">", prop("GREEN_%"), 0.3),
    ),
    "chinese column and value": Case(
        "\"名稱\" = '旺角廣場'", [3], op("=", prop("名稱"), "旺角廣場")
    ),
    "chinese like": Case(
        "\"名稱\" LIKE '%中%'",
        ids(lambda p: nn("名稱")(p) and "中" in p["名稱"]),
    ),
    "empty string": Case("\"名稱\" = ''", [8]),
    "and, or, not": Case(
        "(FLOORS > 10 OR IS_OPEN = FALSE) AND NOT \"Zone Code\" = 'K1'",
        ids(
            lambda p: (
                ((nn("FLOORS")(p) and p["FLOORS"] > 10) or p["IS_OPEN"] is False)
                and p["Zone Code"] is not None
                and p["Zone Code"] != "K1"
            )
        ),
        json.dumps(
            {
                "op": "and",
                "args": [
                    {
                        "op": "or",
                        "args": [
                            {"op": ">", "args": [prop("FLOORS"), 10]},
                            {"op": "=", "args": [prop("IS_OPEN"), False]},
                        ],
                    },
                    {
                        "op": "not",
                        "args": [{"op": "=", "args": [prop("Zone Code"), "K1"]}],
                    },
                ],
            }
        ),
    ),
    "not of a group": Case(
        "NOT (NAME_EN LIKE 'T%' OR NAME_EN LIKE 'M%')",
        ids(lambda p: nn("NAME_EN")(p) and p["NAME_EN"][0] not in "TM"),
    ),
    "include": Case("INCLUDE", sorted(ROWS)),
    "exclude": Case("EXCLUDE", []),
    "arithmetic multiply": Case(
        "FLOORS * 2 > 50",
        ids(lambda p: nn("FLOORS")(p) and p["FLOORS"] * 2 > 50),
        op(">", {"op": "*", "args": [prop("FLOORS"), 2]}, 50),
    ),
    "arithmetic divide, zero is no match": Case(
        "HEIGHT_M / FLOORS > 4",
        ids(
            lambda p: (
                nn("FLOORS", "HEIGHT_M")(p)
                and p["FLOORS"] != 0
                and p["HEIGHT_M"] / p["FLOORS"] > 4
            )
        ),
    ),
    "arithmetic add": Case("FLOORS + 1 = 3", [4]),
    "property against property": Case(
        "HEIGHT_M > FLOORS * 4",
        ids(lambda p: nn("FLOORS", "HEIGHT_M")(p) and p["HEIGHT_M"] > p["FLOORS"] * 4),
    ),
    "two literals": Case("1 = 1 AND 'a' < 'b'", sorted(ROWS)),
    "injection in a literal": Case(
        "NAME_EN = 'x; DROP TABLE sdi_data.cql_test; --'", []
    ),
    "quote in a literal (json)": Case(
        "NAME_EN LIKE 'x% OR 1=1 --'", [11], op("=", prop("NAME_EN"), "x' OR 1=1 --")
    ),
    "quote in a like pattern (json)": Case(
        "NAME_EN LIKE 'O%Brien%'", [7], op("like", prop("NAME_EN"), "O'Brien%")
    ),
}

CENTRAL = (
    "POLYGON((114.15 22.27, 114.17 22.27, 114.17 22.29, 114.15 22.29, 114.15 22.27))"
)
HK = "POLYGON((113.8 22.1, 114.5 22.1, 114.5 22.6, 113.8 22.6, 113.8 22.1))"
OVERLAP = (
    "POLYGON((114.180 22.281, 114.189 22.281, 114.189 22.290, 114.180 22.290, "
    "114.180 22.281))"
)


def shp(wkt: str) -> BaseGeometry:
    return shapely.from_wkt(wkt)


def geojson(wkt: str) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(shp(wkt)))


SPATIAL: dict[str, Case] = {
    "intersects polygon": Case(
        f"S_INTERSECTS(geometry, {CENTRAL})",
        geo_ids(lambda g: g.intersects(shp(CENTRAL))),
        op("s_intersects", prop("geometry"), geojson(CENTRAL)),
    ),
    "intersects bbox": Case(
        "S_INTERSECTS(geometry, BBOX(114.16, 22.29, 114.18, 22.33))",
        geo_ids(lambda g: g.intersects(shapely.box(114.16, 22.29, 114.18, 22.33))),
        op("s_intersects", prop("geometry"), {"bbox": [114.16, 22.29, 114.18, 22.33]}),
    ),
    "intersects envelope": Case(
        "S_INTERSECTS(geom, ENVELOPE(114.16 114.18 22.33 22.29))",
        geo_ids(lambda g: g.intersects(shapely.box(114.16, 22.29, 114.18, 22.33))),
    ),
    "bbox predicate": Case(
        "BBOX(geometry, 114.16, 22.29, 114.18, 22.33)",
        geo_ids(lambda g: g.intersects(shapely.box(114.16, 22.29, 114.18, 22.33))),
    ),
    "within": Case(
        f"S_WITHIN(geometry, {CENTRAL})",
        geo_ids(lambda g: g.within(shp(CENTRAL))),
        op("s_within", prop("geometry"), geojson(CENTRAL)),
    ),
    "within hong kong": Case(
        f"S_WITHIN(geometry, {HK})", geo_ids(lambda g: g.within(shp(HK)))
    ),
    "disjoint": Case(
        f"S_DISJOINT(geometry, {CENTRAL})",
        geo_ids(lambda g: g.disjoint(shp(CENTRAL))),
        op("s_disjoint", prop("geometry"), geojson(CENTRAL)),
    ),
    "contains": Case(
        "S_CONTAINS(geometry, POINT(114.189 22.282))",
        geo_ids(lambda g: g.contains(shp("POINT(114.189 22.282)"))),
    ),
    "touches": Case(
        "S_TOUCHES(geometry, POINT(114.186 22.282))",
        geo_ids(lambda g: g.touches(shp("POINT(114.186 22.282)"))),
    ),
    "crosses": Case(
        f"S_CROSSES(geometry, {VICTORIA_PARK})",
        geo_ids(lambda g: g.crosses(shp(VICTORIA_PARK))),
        op("s_crosses", prop("geometry"), geojson(VICTORIA_PARK)),
    ),
    "overlaps": Case(
        f"S_OVERLAPS(geometry, {OVERLAP})",
        geo_ids(lambda g: g.overlaps(shp(OVERLAP))),
    ),
    "equals": Case(
        "S_EQUALS(geometry, POINT(114.158 22.282))",
        [1],
        op(
            "s_equals",
            prop("geometry"),
            {"type": "Point", "coordinates": [114.158, 22.282]},
        ),
    ),
    "intersects linestring": Case(
        "S_INTERSECTS(geometry, LINESTRING(114.19 22.27, 114.19 22.30))",
        geo_ids(lambda g: g.intersects(shp("LINESTRING(114.19 22.27, 114.19 22.30)"))),
    ),
    "intersects multipoint": Case(
        "S_INTERSECTS(geometry, MULTIPOINT((114.158 22.282), (114.255 22.255)))",
        [1, 12],
    ),
    "intersects multipolygon": Case(
        "S_INTERSECTS(geometry, MULTIPOLYGON(((114.154 22.28, 114.156 22.28, "
        "114.156 22.282, 114.154 22.282, 114.154 22.28)), ((114.167 22.318, "
        "114.170 22.318, 114.170 22.320, 114.167 22.320, 114.167 22.318))))",
        [3, 7],
    ),
    "spatial and attributes": Case(
        f"S_INTERSECTS(geometry, {CENTRAL}) AND FLOORS > 5",
        [1, 2],
    ),
    "geometry is null": Case("geometry IS NULL", [9]),
}

TEMPORAL: dict[str, Case] = {
    "t_after": Case(
        "T_AFTER(OPENED, DATE('2010-01-01'))",
        ids(lambda p: nn("OPENED")(p) and p["OPENED"] > dt.date(2010, 1, 1)),
        op("t_after", prop("OPENED"), {"date": "2010-01-01"}),
    ),
    "t_before": Case(
        "T_BEFORE(OPENED, DATE('2000-01-01'))",
        ids(lambda p: nn("OPENED")(p) and p["OPENED"] < dt.date(2000, 1, 1)),
        op("t_before", prop("OPENED"), {"date": "2000-01-01"}),
    ),
    "t_equals": Case(
        "T_EQUALS(OPENED, DATE('2010-01-01'))",
        [7, 12],
        op("t_equals", prop("OPENED"), {"date": "2010-01-01"}),
    ),
    "t_during": Case(
        "T_DURING(UPDATED, INTERVAL('2010-01-01T00:00:00Z', '2020-01-01T08:00:00Z'))",
        ids(
            lambda p: (
                nn("UPDATED")(p)
                and _ts("2010-01-01") < p["UPDATED"] < _ts("2020-01-01T08:00")
            )
        ),
        op(
            "t_during",
            prop("UPDATED"),
            {"interval": ["2010-01-01T00:00:00Z", "2020-01-01T08:00:00Z"]},
        ),
    ),
    "t_during open end": Case(
        "T_DURING(OPENED, INTERVAL('1999-12-31', '..'))",
        ids(lambda p: nn("OPENED")(p) and p["OPENED"] > dt.date(1999, 12, 31)),
        op("t_during", prop("OPENED"), {"interval": ["1999-12-31", ".."]}),
    ),
    "t_intersects": Case(
        "T_INTERSECTS(OPENED, INTERVAL('2000-01-01', '2010-01-01'))",
        ids(
            lambda p: (
                nn("OPENED")(p)
                and dt.date(2000, 1, 1) <= p["OPENED"] <= dt.date(2010, 1, 1)
            )
        ),
        op("t_intersects", prop("OPENED"), {"interval": ["2000-01-01", "2010-01-01"]}),
    ),
    "t_intersects fully open": Case(
        "T_INTERSECTS(OPENED, INTERVAL('..', '..'))",
        ids(nn("OPENED")),
        op("t_intersects", prop("OPENED"), {"interval": ["..", ".."]}),
    ),
    "t_disjoint": Case(
        "T_DISJOINT(OPENED, INTERVAL('2000-01-01', '2010-01-01'))",
        ids(
            lambda p: (
                nn("OPENED")(p)
                and not dt.date(2000, 1, 1) <= p["OPENED"] <= dt.date(2010, 1, 1)
            )
        ),
        op("t_disjoint", prop("OPENED"), {"interval": ["2000-01-01", "2010-01-01"]}),
    ),
}


ALL = {**CASES, **SPATIAL, **TEMPORAL}


@pytest.mark.parametrize("case", ALL.values(), ids=list(ALL))
def test_text_filter(table: Conn, case: Case) -> None:
    assert run(table, case.text) == case.expected


@pytest.mark.parametrize(
    "case",
    [c for c in ALL.values() if c.json],
    ids=[name for name, c in ALL.items() if c.json],
)
def test_json_filter(table: Conn, case: Case) -> None:
    assert case.json is not None
    assert run(table, case.json, "cql2-json") == case.expected


def test_expectations_are_not_trivial() -> None:
    """Each case selects something and not everything (except the ones meant to)."""
    everything = sorted(ROWS)
    trivial = {
        "include",
        "exclude",
        "two literals",
        "like a dot is a dot",
        "injection in a literal",
    }
    for name, case in ALL.items():
        if name not in trivial:
            assert case.expected, name
            assert case.expected != everything, name


# -- filter-crs ----------------------------------------------------------------
def _flip_wkt(polygon: BaseGeometry) -> str:
    return shapely.to_wkt(shapely.transform(polygon, lambda c: c[:, ::-1]))


def test_filter_crs_2326_northing_first(table: Conn) -> None:
    lonlat = shp(
        "POLYGON((114.150 22.275, 114.175 22.275, 114.175 22.300, "
        "114.150 22.300, 114.150 22.275))"
    )
    to_grid = Transformer.from_crs(4326, 2326, always_xy=True)
    grid = shapely.transform(  # easting, northing
        lonlat, lambda c: np.column_stack(to_grid.transform(c[:, 0], c[:, 1]))
    )
    expected = geo_ids(lambda g: g.intersects(lonlat))
    assert expected == [1, 2, 4, 6, 7, 8]
    filter_text = f"S_INTERSECTS(geometry, {_flip_wkt(grid)})"
    assert run(table, filter_text, filter_srid=2326, flip=True) == expected
    # the same in easting, northing order without flip
    filter_text = f"S_INTERSECTS(geometry, {shapely.to_wkt(grid)})"
    assert run(table, filter_text, filter_srid=2326) == expected
    # JSON, BBOX literal
    minx, miny, maxx, maxy = grid.bounds
    document = op("s_intersects", prop("geometry"), {"bbox": [miny, minx, maxy, maxx]})
    assert run(table, document, "cql2-json", filter_srid=2326, flip=True) == expected


def test_filter_crs_epsg_4326_latitude_first(table: Conn) -> None:
    expected = geo_ids(lambda g: g.intersects(shp(CENTRAL)))
    latlon = _flip_wkt(shp(CENTRAL))
    assert run(table, f"S_INTERSECTS(geometry, {latlon})", flip=True) == expected
    assert run(table, "S_EQUALS(geometry, POINT(22.282 114.158))", flip=True) == [1]


@pytest.mark.parametrize("name", list(SPATIAL)[:6])
def test_storage_in_2326_with_a_crs84_filter(table: Conn, name: str) -> None:
    case = SPATIAL[name]
    assert run(table, case.text, srid=2326) == case.expected


def test_storage_in_2326_with_a_2326_filter(table: Conn) -> None:
    grid = Transformer.from_crs(4326, 2326, always_xy=True)
    east, north = grid.transform(114.158, 22.282)
    box = f"BBOX({north - 5}, {east - 5}, {north + 5}, {east + 5})"
    text = f"S_INTERSECTS(geometry, {box})"
    assert run(table, text, srid=2326, filter_srid=2326, flip=True) == [1]
    box = f"BBOX({east - 5}, {north - 5}, {east + 5}, {north + 5})"
    text = f"S_INTERSECTS(geometry, {box})"
    assert run(table, text, srid=2326, filter_srid=2326) == [1]


def test_ewkt_srid_wins_and_nothing_is_printed(
    table: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = Transformer.from_crs(4326, 2326, always_xy=True)
    east, north = grid.transform(114.158, 22.282)
    ring = ", ".join(
        f"{east + dx} {north + dy}"
        for dx, dy in ((-9, -9), (9, -9), (9, 9), (-9, 9), (-9, -9))
    )
    text = f"S_INTERSECTS(geometry, SRID=2326;POLYGON(({ring})))"
    assert run(table, text) == [1]
    assert run(table, text, srid=2326) == [1]
    assert run(table, "S_INTERSECTS(geometry, MULTIPOINT((114.158 22.282)))") == [1]
    assert capsys.readouterr().out == ""


def test_coordinates_outside_the_filter_crs_are_refused() -> None:
    message = refused(
        "S_INTERSECTS(geometry, POINT(1000000000 1000000000))", filter_srid=2326
    )
    assert "outside the area EPSG:2326 covers" in message


def test_stock_pygeofilter_asts_work_too(table: Conn) -> None:
    """ASTs from pygeofilter's own parsers (what pygeoapi hands providers)."""
    params: dict[str, Any] = {}
    node = stock_text_parse("FLOORS > 10 AND NAME_EN LIKE '%Tower'")
    where = filter_sql(node, fields=FIELDS, srid=4326, params=params)
    statement = sql.SQL("SELECT t._sdi_fid FROM {} AS t WHERE {}").format(
        sql.Identifier("sdi_data", TABLE), where
    )
    assert [r[0] for r in table.execute(statement, params)] == [1]


def test_storage_in_another_srid_is_transformed_to() -> None:
    params: dict[str, Any] = {}
    where = filter_sql(
        parse_filter("S_INTERSECTS(geometry, POINT(114.1 22.3))"),
        fields=FIELDS,
        srid=2326,
        params=params,
    )
    text = where.as_string(None)
    assert "ST_Transform(" in text and "2326" in text
    assert list(params.values()) == ['{"type": "Point", "coordinates": [114.1, 22.3]}']


# -- parameters, caching ---------------------------------------------------------
def test_values_are_parameters_with_fresh_names(table: Conn) -> None:
    params: dict[str, Any] = {"cql_0": "keep", "limit": 10}
    where = filter_sql(
        parse_filter("NAME_EN = 'Central Tower' AND FLOORS IN (40, 41)"),
        fields=FIELDS,
        srid=4326,
        params=params,
    )
    text = where.as_string(table)
    assert "Central" not in text and "40" not in text
    assert params["cql_0"] == "keep" and params["limit"] == 10
    assert sorted(
        v
        for k, v in params.items()
        if k != "cql_0" and k.startswith("cql_") and isinstance(v, int)
    ) == [40, 41]
    assert "Central Tower" in params.values()


def test_parses_are_cached() -> None:
    text = "FLOORS > 3 AND NAME_EN LIKE 'A%'"
    assert parse_filter(text) is parse_filter(text, "cql2-text")
    document = op(">", prop("FLOORS"), 3)
    assert parse_filter(document, "cql2-json") is parse_filter(document, "cql2-json")


def test_cql2_error_is_a_400_value_error() -> None:
    error = Cql2Error("x")
    assert isinstance(error, ValueError) and isinstance(error, BadInputError)
    assert error.status == 400


# -- refusals ----------------------------------------------------------------------
def refused(text: str, lang: str | None = None, **options: Any) -> str:
    with pytest.raises(Cql2Error) as info:
        filter_sql(
            parse_filter(text, lang), fields=FIELDS, srid=4326, params={}, **options
        )
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "lang", "needle"),
    [
        ("NAME_EN = ", None, "not valid CQL2 text"),
        ("NAME_EN == 3", None, "at character 10"),
        ("))", None, "not valid CQL2 text"),
        ("", None, "empty"),
        ("NAME_EN = DATE('2010-13-45')", None, "not valid CQL2 text"),
        ("NAME_EN = 'x'' OR 1=1 --'", None, "not valid CQL2 text"),
        ("{not json", "cql2-json", "not valid JSON"),
        ('{"op": "=", "args": [1]}', "cql2-json", "not valid CQL2 JSON"),
        ('{"op": "frobnicate", "args": [1, 2]}', "cql2-json", "not valid CQL2 JSON"),
        ("FLOORS > 3", "cql-text", "filter-lang must be cql2-text or cql2-json"),
        ("FLOORS > 3", "ecql", "filter-lang must be cql2-text or cql2-json"),
    ],
)
def test_malformed_filters(text: str, lang: str | None, needle: str) -> None:
    with pytest.raises(Cql2Error, match=needle.replace("(", r"\(")):
        parse_filter(text, lang)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("FOO = 1", ["Unknown property 'FOO'", "/queryables"]),
        ("name_en = 'x'", ["case-sensitive", "'NAME_EN'"]),
        ("FLORS > 3", ["Did you mean 'FLOORS'"]),
        ('"a; DROP TABLE t" = 1', ["Unknown property 'a; DROP TABLE t'"]),
        ("\"_sdi_key\" = 'k1'", ["Unknown property '_sdi_key'"]),
        ("x = 1", ["Unknown property 'x'"]),
        ("FLOORS = 'abc'", ["an integer", "'abc'"]),
        ("HEIGHT_M > 'tall'", ["a number"]),
        ("IS_OPEN = 3", ["a boolean", "TRUE"]),
        ("OPENED > 'yesterday'", ["a date", "DATE('2020-01-31')"]),
        ("OPENED > 3", ["a date"]),
        ("FLOORS = NAME_EN", ["Cannot compare", "'FLOORS'", "'NAME_EN'"]),
        ("FLOORS + 'a' > 1", ["Arithmetic"]),
        ("NAME_EN * 2 > 1", ["Arithmetic", "a string"]),
        ("NAME_EN = POINT(1 2)", ["geometries"]),
        ("geometry = 'x'", ["geometries"]),
        ("S_INTERSECTS(NAME_EN, POINT(114 22))", ["not a geometry"]),
        ("S_INTERSECTS(nowhere, POINT(114 22))", ["Unknown property 'nowhere'"]),
        ("S_INTERSECTS(geometry, 'POINT(1 2)')", ["Spatial operators compare"]),
        ("S_INTERSECTS(geometry, POINT(500 22))", ["outside the world"]),
        ("S_INTERSECTS(geometry, POINT(114 22))", ["outside the world"]),
        ("T_AFTER(NAME_EN, DATE('2010-01-01'))", ["date or timestamp property"]),
        ("NAME_EN LIKE 'abc\\'", ["escape character"]),
        ("NAME_EN LIKE 5", ["LIKE pattern must be a string"]),
        ("FOO(NAME_EN) = 'x'", ["Unknown function 'foo'"]),
        ("FLOORS IN (1, 'two')", ["an integer", "'two'"]),
    ],
)
def test_refused_filters(text: str, needles: list[str]) -> None:
    # POINT(114 22) is fine in CRS84 but not with latitude first.
    flip = text == "S_INTERSECTS(geometry, POINT(114 22))"
    message = refused(text, flip=flip)
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (op("=", prop("FOO"), 1), "Unknown property 'FOO'"),
        (op("=", prop("FLOORS"), "abc"), "an integer"),
        (
            op(
                "s_intersects",
                prop("geometry"),
                {"type": "Polygon", "coordinates": [[[114, 22], [115, 22], [115, 23]]]},
            ),
            "end where it starts",
        ),
        (
            op(
                "s_intersects",
                prop("geometry"),
                {"type": "Point", "coordinates": ["a", 1]},
            ),
            "finite numbers",
        ),
        (op("s_intersects", prop("geometry"), {"bbox": [1, 2, 3]}), "bbox literal"),
        (
            op("t_during", prop("OPENED"), {"interval": ["2010-01-01", "P1Y"]}),
            "Durations",
        ),
        (op("like", prop("NAME_EN"), {"op": "frob", "args": [3]}), "not valid"),
        (json.dumps({"property": "NAME_EN"}), "not a condition"),
    ],
)
def test_refused_json_filters(document: str, needle: str) -> None:
    try:
        message = refused(document, "cql2-json")
    except Cql2Error as exc:  # refused while parsing
        message = str(exc)
    assert needle in message, message


def test_hostile_column_name_is_quoted(table: Conn) -> None:
    assert run(table, op("=", prop(HOSTILE), "h3"), "cql2-json") == [3]
    assert run(table, op("isNull", prop(HOSTILE)), "cql2-json") == ids(
        lambda p: p[HOSTILE] is None
    )


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("FLOORS > 1 AND " * 5000 + "FLOORS > 1", None),
        ('{"op": "not", "args": [' * 5000 + "true" + "]}" * 5000, "cql2-json"),
    ],
    ids=["text", "json"],
)
def test_deep_nesting_is_refused_not_crashed(text: str, lang: str | None) -> None:
    with pytest.raises(Cql2Error, match="nested too deeply"):
        filter_sql(parse_filter(text, lang), fields=FIELDS, srid=4326, params={})


def test_hostile_filters_leave_the_table_intact(table: Conn) -> None:
    attempts = [
        "NAME_EN = 'x; DROP TABLE sdi_data.cql_test; --'",
        "NAME_EN LIKE '%; DELETE FROM sdi_data.cql_test; --'",
        op("=", prop("NAME_EN"), "'); DROP TABLE sdi_data.cql_test; --"),
        op("=", prop("NAME_EN"), "x' OR '1'='1"),
        op("in", prop("Zone Code"), ["A1') OR ('1'='1"]),
        op("=", prop('NAME_EN" = NAME_EN OR "NAME_EN'), "x"),
    ]
    for attempt in attempts:
        lang = "cql2-json" if attempt.startswith("{") else None
        with contextlib.suppress(Cql2Error):
            assert run(table, attempt, lang) == []
    count = table.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("sdi_data", TABLE))
    ).fetchone()
    assert count == (len(ROWS),)


def test_mutated_filters_never_reach_postgresql_as_errors(table: Conn) -> None:
    """Random edits of valid filters: each one runs or is a Cql2Error, never a 500."""
    rng = random.Random(2326)
    sources = [c.text for c in ALL.values()] + [c.json for c in ALL.values() if c.json]
    alphabet = "()'\",.%_-+*/<>=! 0123456789abcTRUEFALSENOTANDORIN:[]{}\\"
    outcomes = {"ran": 0, "refused": 0}
    for _ in range(400):
        text = rng.choice(sources)
        assert text is not None
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars) + 1)
            action = rng.random()
            if action < 0.4 and chars:
                del chars[min(i, len(chars) - 1)]
            elif action < 0.8:
                chars.insert(i, rng.choice(alphabet))
            elif chars:
                chars[min(i, len(chars) - 1)] = rng.choice(alphabet)
        mutated = "".join(chars)
        lang = "cql2-json" if mutated.lstrip().startswith(("{", "[")) else None
        try:
            run(table, mutated, lang)
        except Cql2Error:
            outcomes["refused"] += 1
        else:
            outcomes["ran"] += 1
    assert outcomes["ran"] > 15 and outcomes["refused"] > 50, outcomes
