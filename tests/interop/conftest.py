"""The demo, loaded once per session and served by a real ``sdi serve`` (gunicorn).

Every interoperability test reads the same three vector layers, so the
database (a copy of the session's migrated template), the demo load and the
server are session-scoped. The truth the tests compare against is computed
independently of the server: from the demo generator's records (EPSG:2326,
what the files hold) transformed with pyproj as ingestion does, and from SQL
on the layer tables.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql
from pyproj import Transformer

from sdi.db import Cluster
from sdi.demo import DEMO_LAYERS, iter_buildings, iter_bus_stops, iter_roads
from sdi.demo.generate import BUILDING_SCHEMA, BUS_STOP_SCHEMA, ROAD_SCHEMA
from sdi.settings import Settings
from tests.conftest import TEMPLATE, free_port

ROOT = Path(__file__).resolve().parents[2]
SDI = str(Path(sys.executable).parent / "sdi")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG2326 = "http://www.opengis.net/def/crs/EPSG/0/2326"

#: The demo's vector layers, with the key column that identifies a feature.
LAYERS: dict[str, str] = {layer.slug: layer.key_column for layer in DEMO_LAYERS}
#: An attribute holding Chinese text in each layer.
CHINESE: dict[str, str] = {
    "landsd_buildings": "BuildingNameTC",
    "td_bus_stops": "STOP_NAMEC",
    "td_roads": "ROUTE_NAMEC",
}
#: EPSG:2326 -> WGS 84 longitude/latitude as ingestion does it (PROJ picks
#: EPSG:1825); the inverse takes CRS84 output back to the HK 1980 Grid.
TO_WGS84 = Transformer.from_crs(2326, 4326, always_xy=True)
TO_HK80 = Transformer.from_crs(4326, 2326, always_xy=True)

Coords = list[tuple[float, float]]
Box = tuple[float, float, float, float]


@dataclass
class Layer:
    """One demo layer as the source file holds it (what version is published)."""

    slug: str
    key: str
    #: key value (as text) -> properties, in the file's own types
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: key value (as text) -> every vertex, EPSG:2326 easting/northing
    coords: dict[str, Coords] = field(default_factory=dict)
    geometry_type: str = ""
    #: attribute -> "str", "int" or "float", as the file's schema says
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Demo:
    """The running server and what it should serve."""

    url: str
    db_url: str
    layers: dict[str, Layer]
    log: Path  # gunicorn's access log (and the server's warnings)

    def log_mark(self) -> int:
        """Where the server log ends now: pass it to :meth:`requests_since`."""
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> list[str]:
        """Request lines (``GET /path?query``) the server logged after ``mark``."""
        with self.log.open("rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
        return re.findall(r'"((?:GET|POST|HEAD) \S+) HTTP/', text)

    def query(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of one SQL statement on the demo database."""
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]

    def published_where(self, slug: str) -> str:
        """SQL condition selecting the rows of ``slug``'s published version."""
        [(version,)] = self.query(
            "SELECT published_version FROM sdi.layers WHERE slug = %s", slug
        )
        n = int(version)
        return f"_sdi_from <= {n} AND (_sdi_to IS NULL OR _sdi_to > {n})"

    def count(self, slug: str, condition: str = "TRUE", *params: object) -> int:
        """Features of ``slug``'s published version matching an SQL condition."""
        [(n,)] = self.query(
            f'SELECT count(*) FROM sdi_data."{slug}" '  # noqa: S608 (test SQL, our slugs)
            f"WHERE {self.published_where(slug)} AND ({condition})",
            *params,
        )
        return int(n)

    def keys(self, slug: str, condition: str = "TRUE", *params: object) -> set[str]:
        """Key values (as text) of the published features matching a condition."""
        key = LAYERS[slug]
        rows = self.query(
            f'SELECT "{key}"::text FROM sdi_data."{slug}" '  # noqa: S608
            f"WHERE {self.published_where(slug)} AND ({condition})",
            *params,
        )
        return {r[0] for r in rows}


def vertices(geometry: dict[str, Any]) -> Coords:
    """Every vertex of a GeoJSON-like geometry, in order."""

    def walk(c: Any) -> Iterator[tuple[float, float]]:
        if c and isinstance(c[0], int | float):
            yield (float(c[0]), float(c[1]))
        else:
            for part in c:
                yield from walk(part)

    return list(walk(geometry["coordinates"]))


def _source_layers() -> dict[str, Layer]:
    records = {
        "landsd_buildings": iter_buildings(1.0, 2),  # the published version
        "td_bus_stops": iter_bus_stops(1.0),
        "td_roads": iter_roads(1.0),
    }
    layers = {}
    schemas = {
        "landsd_buildings": BUILDING_SCHEMA,
        "td_bus_stops": BUS_STOP_SCHEMA,
        "td_roads": ROAD_SCHEMA,
    }
    for slug, key in LAYERS.items():
        fields = schemas[slug]["properties"].items()
        layer = Layer(slug, key, fields={k: v.split(":")[0] for k, v in fields})
        for record in records[slug]:
            k = str(record["properties"][key])
            layer.properties[k] = dict(record["properties"])
            layer.coords[k] = vertices(record["geometry"])
            layer.geometry_type = record["geometry"]["type"]
        layers[slug] = layer
    return layers


def to_wgs84(coords: Coords) -> Coords:
    """HK 1980 Grid easting/northing -> longitude/latitude."""
    xs, ys = TO_WGS84.transform([c[0] for c in coords], [c[1] for c in coords])
    return list(zip(xs, ys, strict=True))


def to_hk80(coords: Coords) -> Coords:
    """Longitude/latitude -> HK 1980 Grid easting/northing."""
    xs, ys = TO_HK80.transform([c[0] for c in coords], [c[1] for c in coords])
    return list(zip(xs, ys, strict=True))


def max_distance(a: Coords, b: Coords) -> float:
    """Largest distance between corresponding vertices (inf if counts differ)."""
    if len(a) != len(b):
        return math.inf
    return max((math.dist(p, q) for p, q in zip(a, b, strict=True)), default=0.0)


@dataclass(frozen=True)
class Filter:
    """One attribute filter, written for each client and for the database."""

    ogr: str  # OGR SQL, for ``-where``
    qgis: str  # a QGIS expression, for ``setSubsetString``
    cql2: str  # CQL2 text, for ``filter=``
    sql: str  # the SQL condition, with ``%s`` for ``params``
    params: tuple[object, ...]
    test: Callable[[dict[str, Any]], bool]  # on a feature's properties

    def expected(self, demo: Demo, slug: str, bbox: Box, srid: int = 4326) -> set[str]:
        """Keys of the published features matching the filter and the box."""
        return demo.keys(slug, f"{self.sql} AND {in_box(srid)}", *self.params, *bbox)


#: A filter per layer. Comparisons other than equality on a queryable cannot be
#: sent as ``name=value``: clients evaluate them themselves or send CQL.
FILTERS: dict[str, Filter] = {
    "landsd_buildings": Filter(
        ogr="NUM_STOREY >= 20",
        qgis='"NUM_STOREY" >= 20',
        cql2='"NUM_STOREY" >= 20',
        sql='"NUM_STOREY" >= %s',
        params=(20,),
        test=lambda p: p["NUM_STOREY"] >= 20,
    ),
    "td_bus_stops": Filter(
        ogr="STOP_NAMEC LIKE '德輔道中%'",
        qgis="\"STOP_NAMEC\" LIKE '德輔道中%'",
        cql2="\"STOP_NAMEC\" LIKE '德輔道中%'",
        sql='"STOP_NAMEC" LIKE %s',
        params=("德輔道中%",),
        test=lambda p: p["STOP_NAMEC"].startswith("德輔道中"),
    ),
    "td_roads": Filter(
        ogr="SPEED_LIMIT = 70",
        qgis='"SPEED_LIMIT" = 70',
        cql2='"SPEED_LIMIT" = 70',
        sql='"SPEED_LIMIT" = %s',
        params=(70,),
        test=lambda p: p["SPEED_LIMIT"] == 70,
    ),
}


def in_box(srid: int = 4326) -> str:
    """SQL: the feature intersects ``%s, %s, %s, %s`` (x/y) in EPSG:``srid``."""
    geom = "_sdi_geom" if srid == 4326 else f"ST_Transform(_sdi_geom, {int(srid)})"
    return f"ST_Intersects({geom}, ST_MakeEnvelope(%s, %s, %s, %s, {int(srid)}))"


def subset_bbox(layer: Layer, subset: Filter, *, hk80: bool = False) -> Box:
    """About the lower-left 2/3 of the extent of the features a filter keeps.

    In CRS84 longitude/latitude, or HK 1980 Grid easting/northing. Widened by
    about 50 m to the south-west, and with no vertex on an edge (the server
    rounds its output, and clients check the box again on what they receive).
    """
    points = [
        p
        for key, coords in layer.coords.items()
        if subset.test(layer.properties[key])
        for p in (coords if hk80 else to_wgs84(coords))
    ]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    margin, clear = (50.0, 1e-3) if hk80 else (5e-4, 1e-6)
    for share in (0.67, 0.66, 0.65, 0.64, 0.63, 0.62, 0.61, 0.6):
        bbox = (
            x0 - margin,
            y0 - margin,
            x0 + (x1 - x0) * share,
            y0 + (y1 - y0) * share,
        )
        if (
            min(abs(x - bbox[2]) for x in xs)
            > clear
            < min(abs(y - bbox[3]) for y in ys)
        ):
            return bbox
    raise AssertionError("no bbox keeps clear of the vertices")


def _wait_up(
    url: str, server: subprocess.Popen[str], log: Path, timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/collections?f=json", timeout=30).ok:
                return
        except requests.RequestException:  # not listening yet, or still busy
            pass
        if server.poll() is not None:
            raise RuntimeError(f"sdi serve exited:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError("sdi serve did not come up")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def demo(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """The demo loaded into its own database and served by ``sdi serve``."""
    from sdi.demo import load_demo
    from sdi.publish import write_collections

    name = f"interop_{os.getpid()}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    db_url = pg_cluster.url(name)
    tmp = tmp_path_factory.mktemp("interop")
    settings = Settings(
        database_url=db_url,
        var_dir=tmp / "var",
        collections_dir=tmp / "collections",
        config_dir=ROOT / "config",
        secret_key="interop-secret",
        port=free_port(),
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_demo(conn, settings)
        write_collections(conn, settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": db_url,
        "SDI_PORT": str(settings.port),
        "SDI_WORKERS": "2",
        "SDI_VAR_DIR": str(settings.var_dir),
        "SDI_COLLECTIONS_DIR": str(settings.collections_dir),
        "SDI_CONFIG_DIR": str(settings.config_dir),
        "SDI_SECRET_KEY": settings.secret_key,
    }
    log = tmp / "serve.log"
    with log.open("w", encoding="utf-8") as out:
        server = subprocess.Popen(
            [SDI, "serve"], env=env, cwd=tmp, stdout=out,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
    url = settings.public_url
    try:
        _wait_up(url, server, log)
        yield Demo(url, db_url, _source_layers(), log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )
