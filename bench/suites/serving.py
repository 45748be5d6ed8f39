"""Serving: sdi's OGC API against stock pygeoapi, tuned pygeoapi and tipg.

One throwaway PostGIS cluster holds the same generated rows twice: sdi's
versioned tables ``sdi_data.buildings`` / ``sdi_data.points`` (loaded with
``sdi.ingest.ingest_file`` and published) and plain tables
``public.buildings`` / ``public.points`` for the peers (``ogr2ogr`` from the
same GeoPackages, integer primary key ``id``, GiST index; every table
``VACUUM ANALYZE``d). The servers run one after the other, each with two
worker processes, on the same database:

- ``sdi``: ``sdi serve`` (gunicorn, gthread, 2 workers x 4 threads);
- ``pygeoapi``: stock pygeoapi 0.24.0, ``PostgreSQL`` provider with its
  default configuration (``count`` on), ``MVT-postgresql`` for tiles, under
  gunicorn with the same worker settings as sdi;
- ``pygeoapi-nocount``: the same with ``count: false`` on the provider;
- ``tipg``: the latest tipg under ``uvicorn --workers 2``.

Every request type is first fetched once (checked: status, feature count,
size), then loaded with ``wrk`` (2 threads, 16 connections, ``--duration``
seconds) while the server's resident memory (master + workers) is sampled
every 100 ms. A request whose check takes more than a second is loaded with 2
connections for at least four of its durations; one that gets no answer in
``--slow-timeout`` seconds is recorded as a time-out. The export is ``ogr2ogr
-f GPKG out.gpkg OAPIF:<server> <collection>``, once. The PostgreSQL anchor is
``pgbench`` running the SQL that builds sdi's ``limit=1000`` body.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench.context import REPO_DIR, BenchContext, PostGIS
from bench.serving import data, load, peers, procs
from bench.serving.report import markdown
from bench.timing import Measurement
from sdi.ingest import ingest_file
from sdi.registry import LayerInput, create_agency, create_layer, get_licence, publish

NAME = "serving"
DESCRIPTION = (
    "OGC API Features and vector tiles over 300k buildings and 1M points: sdi vs "
    "stock pygeoapi, pygeoapi count:false and tipg (wrk, req/s, p50/p99, memory)"
)
SERVERS = ("sdi", "pygeoapi", "pygeoapi-nocount", "tipg")
PORTS = {"postgis": 5611, "sdi": 5621, "pygeoapi": 5622, "pygeoapi-nocount": 5623,
         "tipg": 5624}  # fmt: skip
WORKERS = 2
CONNECTIONS = 16
THREADS = 2
SLOW_S = 1.0  # a check slower than this: load with 2 connections
LIMIT_MAX = 10_000
CQL2 = "floors > 30 AND use = 'residential'"
SMALL_BBOX = "114.1570,22.2810,114.1590,22.2830"  # ~200 m in Central
LARGE_BBOX = "114.1400,22.2900,114.2300,22.3500"  # Kowloon
EXPORT_PAGE = 1000


@dataclass(frozen=True)
class RequestType:
    """One kind of request, the same for every server."""

    id: str
    label: str
    layer: str  # buildings or points
    kind: str  # items, item, tile, export
    query: str = ""
    expect: int | None = None  # features in the response when known
    #: every request a different ``offset``, uniform in [lo, hi] (wrk Lua)
    offsets: tuple[int, int] | None = None
    sdi_query: str = ""  # appended to sdi's path only (tiles: ``properties=*``)
    skip: tuple[str, ...] = ()  # servers not measured for this type
    skip_note: str = ""


def request_types(buildings: int, points: int) -> list[RequestType]:
    """Every request type at this data size."""
    deep = min(250_000, buildings * 5 // 6)
    # Random deep offsets, scaled as ``deep``; every one leaves a full page.
    lo = min(200_000, buildings * 2 // 3)
    hi = max(lo, min(290_000, buildings * 29 // 30, buildings - 10))
    z, x, y = data.CENTRAL_TILE
    cql = quote(CQL2)
    return [
        RequestType("b-limit10", "buildings: first page, limit=10", "buildings",
                    "items", "limit=10", 10),
        RequestType("b-limit1000", "buildings: first page, limit=1000", "buildings",
                    "items", "limit=1000", 1000),
        RequestType("b-limit10000", "buildings: first page, limit=10000",
                    "buildings", "items", f"limit={LIMIT_MAX}",
                    min(LIMIT_MAX, buildings)),
        RequestType("b-bbox-small", "buildings: bbox ~200 m in Central, limit=100",
                    "buildings", "items", f"bbox={SMALL_BBOX}&limit=100"),
        RequestType("b-bbox-large", "buildings: bbox Kowloon, limit=1000",
                    "buildings", "items", f"bbox={LARGE_BBOX}&limit=1000"),
        RequestType("b-deep", "buildings: deep page, same offset repeated "
                    f"(offset={deep:,}, limit=10)", "buildings", "items",
                    f"offset={deep}&limit=10", 10),
        RequestType("b-deep-random", "buildings: deep page, random offsets "
                    f"({lo:,}-{hi:,}, limit=10)", "buildings", "items", "limit=10",
                    10, offsets=(lo, hi)),
        RequestType("b-id", "buildings: feature by id", "buildings", "item", "", 1),
        RequestType("b-attr", "buildings: floors=30, limit=100", "buildings",
                    "items", "floors=30&limit=100"),
        RequestType("b-cql2", f"buildings: CQL2 {CQL2}, limit=100", "buildings",
                    "items", f"filter={cql}&filter-lang=cql2-text&limit=100"),
        RequestType("p-limit1000", "points: first page, limit=1000", "points",
                    "items", "limit=1000", 1000),
        RequestType("p-bbox-small", "points: bbox ~200 m in Central, limit=100",
                    "points", "items", f"bbox={SMALL_BBOX}&limit=100"),
        RequestType("p-bbox-large", "points: bbox Kowloon, limit=1000", "points",
                    "items", f"bbox={LARGE_BBOX}&limit=1000", 1000),
        RequestType("b-tile", f"buildings: vector tile z{z}/x{x}/y{y} (Central)",
                    "buildings", "tile", f"{z}/{x}/{y}"),
        RequestType("b-tile-all", f"buildings: vector tile z{z} Central, all "
                    "attributes", "buildings", "tile", f"{z}/{x}/{y}",
                    sdi_query="properties=*", skip=("pygeoapi", "pygeoapi-nocount"),
                    skip_note="skipped: pygeoapi's MVT-postgresql tile times out "
                    "on the default tile (b-tile) already"),
        RequestType("b-export", "buildings: full export, ogr2ogr OAPIF -> GPKG",
                    "buildings", "export", "", buildings),
    ]  # fmt: skip


def collection(server: str, layer: str) -> str:
    """The collection id a server gives a layer."""
    return f"public.{layer}" if server == "tipg" else layer


def path(server: str, rt: RequestType, fid: Any, offset: int | None = None) -> str:
    """The request's path and query on ``server``.

    Random-offset types: the path with ``offset`` (default the lowest), or
    with ``offset=`` last and no value when ``offset`` is -1 (the wrk prefix).
    """
    cid = collection(server, rt.layer)
    if rt.kind == "item":
        return f"/collections/{cid}/items/{fid}"
    if rt.kind == "tile":
        z, x, y = rt.query.split("/")
        if server == "tipg":  # tipg's order: z/x/y
            return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}"
        suffix = "?f=mvt" if server.startswith("pygeoapi") else ""
        if server == "sdi" and rt.sdi_query:
            suffix = f"?{rt.sdi_query}"
        return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{y}/{x}{suffix}"
    if rt.offsets:
        value = "" if offset == -1 else str(rt.offsets[0] if offset is None else offset)
        return f"/collections/{cid}/items?{rt.query}&offset={value}"
    return f"/collections/{cid}/items?{rt.query}"


# -- loading ------------------------------------------------------------------


def _ogr2ogr(pg: PostGIS, layer: data.Layer) -> None:
    load.run_checked([
        "ogr2ogr", "--config", "PG_USE_COPY", "YES", "-f", "PostgreSQL", pg.ogr_dsn,
        str(layer.path), layer.name, "-nln", f"public.{layer.name}",
        "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=id", "-lco", "SPATIAL_INDEX=GIST",
        "-overwrite",
    ])  # fmt: skip


def _load(
    ctx: BenchContext, pg: PostGIS, layers: tuple[data.Layer, ...]
) -> dict[str, Any]:
    """sdi's ingestion and publication, and the peers' tables; timings."""
    console = ctx.console
    timings: dict[str, float] = {}
    versions: dict[str, int] = {}
    with pg.connect() as conn:
        settings = pg.settings()
        agency = create_agency(conn, "bench", "Benchmark", actor="bench")
        licence = get_licence(conn, "cc-by-4.0")
        for layer in layers:
            create_layer(
                conn, agency,
                LayerInput(slug=layer.name, title_en=f"Benchmark {layer.name}",
                           licence_id=licence.id),
                actor="bench",
            )  # fmt: skip
            start = time.perf_counter()
            with console.status(f"sdi ingest {layer.label}"):
                version = ingest_file(
                    conn, settings, layer.path, layer=layer.name, actor="bench"
                )
            publish(conn, layer.name, version.number, actor="bench")
            timings[f"sdi ingest {layer.name}"] = time.perf_counter() - start
            versions[layer.name] = version.number
            start = time.perf_counter()
            with console.status(f"ogr2ogr {layer.label}"):
                _ogr2ogr(pg, layer)
            timings[f"ogr2ogr {layer.name}"] = time.perf_counter() - start
            console.log(
                f"Loaded {layer.label}: sdi {timings[f'sdi ingest {layer.name}']:.1f} s"
                f", ogr2ogr {timings[f'ogr2ogr {layer.name}']:.1f} s"
            )
        start = time.perf_counter()
        for table in ("sdi_data.buildings", "sdi_data.points", "public.buildings",
                      "public.points"):  # fmt: skip
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")
        timings["vacuum analyze"] = time.perf_counter() - start
    return {"timings": timings, "versions": versions}


# -- the PostgreSQL anchor ----------------------------------------------------


def anchor_sql(table: str, version: int, fields: list[str], limit: int) -> str:
    """The SQL producing sdi's ``limit`` page body (as ``sdi.providers.sql``)."""
    columns = ", ".join(f't."{f}"' for f in fields)
    v = int(version)
    # Names come from the registry, numbers from here: no injection.
    return (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', "  # noqa: S608
        "json_agg(f.feature), 'numberReturned', count(*))::text FROM ("
        "SELECT json_build_object('type', 'Feature', 'id', t._sdi_fid, "
        "'geometry', ST_AsGeoJSON(t._sdi_geom, 8, 0)::json, 'properties', to_json(p)) "
        f"AS feature FROM sdi_data.{table} AS t CROSS JOIN LATERAL (SELECT {columns}) "
        f"AS p WHERE t._sdi_from <= {v} AND (t._sdi_to IS NULL OR t._sdi_to > {v}) "
        f"ORDER BY t._sdi_fid LIMIT {limit} OFFSET 0) AS f;\n"
    )


def _anchors(
    pg: PostGIS, versions: dict[str, int], work: Path, seconds: float, console: Any
) -> dict[str, dict[str, Any]]:
    out = {}
    parts = urlsplit(pg.url)
    target = {"host": "127.0.0.1", "port": parts.port, "user": parts.username or "sdi",
              "dbname": pg.dbname}  # fmt: skip
    with pg.connect() as conn:
        for layer, version in versions.items():
            row = conn.execute(
                "SELECT schema FROM sdi.layer_versions v JOIN sdi.layers l "
                "ON l.id = v.layer_id WHERE l.slug = %s AND v.number = %s",
                (layer, version),
            ).fetchone()
            fields = [f["name"] for f in row[0]["fields"]] if row else []
            script = work / f"anchor-{layer}.sql"
            script.write_text(anchor_sql(layer, version, fields, 1000))
            body = conn.execute(script.read_text().rstrip(";\n")).fetchone()
            figures = load.pgbench(target, script, seconds)
            figures["body_bytes"] = len(body[0].encode()) if body else None
            figures["sql"] = script.read_text().strip()
            out[f"{layer[0]}-limit1000"] = figures
            console.log(
                f"pgbench anchor, {layer} limit=1000: {figures['tps']:.1f} tps, "
                f"{(figures['body_bytes'] or 0) / 1024:.0f} KiB body"
            )
    return out


# -- servers ------------------------------------------------------------------


@contextmanager
def _server(
    name: str, pg: PostGIS, work: Path, data_dir: Path, console: Any
) -> Iterator[procs.Server]:
    port = procs.port(PORTS[name])
    base = f"http://127.0.0.1:{port}"
    log = work / f"{name}.log"
    parts = urlsplit(pg.url)
    if name == "sdi":
        env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
        env |= {
            "SDI_DATABASE_URL": pg.url,
            "SDI_VAR_DIR": str(pg.root / "var"),
            "SDI_CONFIG_DIR": str(REPO_DIR / "config"),
            "SDI_COLLECTIONS_DIR": str(work / "collections"),
            "SDI_HOST": "127.0.0.1",
            "SDI_PORT": str(port),
            "SDI_BASE_URL": base,
            "SDI_WORKERS": str(WORKERS),
            "SDI_LIMIT_MAX": str(LIMIT_MAX),
            # The peers' gunicorn and uvicorn log no requests either.
            "SDI_ACCESS_LOG": "off",
        }
        args = [str(Path(sys.executable).parent / "sdi"), "serve"]
        ready = "/conformance"
    elif name.startswith("pygeoapi"):
        root = peers.venv(data_dir, "pygeoapi", console)
        db = {"host": "127.0.0.1", "port": parts.port, "dbname": pg.dbname,
              "user": parts.username or "sdi"}  # fmt: skip
        if parts.password:
            db["password"] = parts.password
        config = peers.pygeoapi_config(
            url=base, port=port, db=db,
            tables={"buildings": "buildings", "points": "points"},
            count=name == "pygeoapi", limit_max=LIMIT_MAX,
        )  # fmt: skip
        env = peers.clean_env() | peers.write_pygeoapi(root, work, name, config)
        args = [
            str(root / "bin" / "gunicorn"), "pygeoapi.flask_app:APP",
            "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
            "--worker-class", "gthread", "--threads", "4", "--timeout", "120",
        ]  # fmt: skip
        ready = "/conformance"
    else:
        root = peers.venv(data_dir, "tipg", console)
        env = peers.clean_env() | {
            "DATABASE_URL": pg.url,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_MAX_FEATURES_PER_QUERY": str(LIMIT_MAX),
            # Full detail: every feature of the tile, as sdi serves it
            # (tipg's default stops at 10,000 features per tile).
            "TIPG_MAX_FEATURES_PER_TILE": "1000000",
        }
        args = [
            str(root / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(WORKERS), "--log-level", "warning",
        ]  # fmt: skip
        ready = "/healthz"
    with procs.serve(name, args, env, base, ready, log) as server:
        yield server


def _first_id(base: str, server: str, layer: str) -> Any:
    url = f"{base}/collections/{collection(server, layer)}/items?limit=10"
    status, _, body, _ = load.probe(url, 60)
    try:
        return json.loads(body)["features"][-1]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return 1 if status else None


def _measure(
    server: procs.Server,
    rt: RequestType,
    fid: Any,
    opts: Any,
    lua: Path,
    work: Path,
) -> load.Result:
    url = server.base + path(server.name, rt, fid)
    result = load.Result(server.name, rt.id, url)
    if rt.kind == "export":
        out = work / f"export-{server.name}.gpkg"
        with server.peak_rss() as mem:
            seconds, features, error = load.ogr_export(
                server.base, collection(server.name, rt.layer), out, EXPORT_PAGE,
                opts.export_timeout,
            )  # fmt: skip
        result.mode = "once"
        result.seconds = round(seconds, 2)
        result.requests = 1
        result.features = features
        result.peak_mb, result.start_mb = round(mem["peak_mb"]), round(mem["start_mb"])
        if error or features != rt.expect:
            result.errors = 1
            result.mode = "failed" if not error.startswith("no result") else "timeout"
            result.note = error or f"{features} features, expected {rt.expect}"
        else:
            result.rps = round(1 / seconds, 4)
            result.p50_ms = result.p99_ms = round(seconds * 1000)
        return result
    status, seconds, body, error = load.probe(url, opts.slow_timeout)
    result.status = status
    result.body_bytes = len(body)
    if rt.kind == "tile":
        tile = load.mvt_summary(body) if status == 200 else None
        if tile:
            result.extra["mvt"] = tile
            result.features = sum(layer["features"] for layer in tile.values())
            result.note = "; ".join(
                f"layer {name}: {layer['extent']} extent, attributes "
                f"{','.join(layer['keys']) or 'none'}"
                for name, layer in tile.items()
            )
    else:
        result.features = load.count_features(body)
    if rt.offsets and status == 200:  # the highest offset must give a full page too
        last = server.base + path(server.name, rt, fid, rt.offsets[1])
        high = load.probe(last, opts.slow_timeout)
        found = load.count_features(high[2]) if high[0] == 200 else None
        result.extra["check_last"] = {"url": last, "status": high[0],
                                      "features": found}  # fmt: skip
        if found != rt.expect:
            result.note = (
                f"offset {rt.offsets[1]}: {found} features, expected {rt.expect}. "
            )
        prefix = path(server.name, rt, fid, -1)  # wrk's Lua adds the offset
        lua = load.lua_script(work, f"{server.name}-{rt.id}", prefix, rt.offsets)
        result.url = f"{server.base}{prefix}{{{rt.offsets[0]}..{rt.offsets[1]}}}"
    if status is None:
        result.mode = "timeout" if error.startswith("no answer") else "failed"
        result.errors = 1
        result.note = error
        return result
    if status >= 400:
        result.mode = "failed"
        result.errors = 1
        result.note = f"HTTP {status}: {body[:120].decode(errors='replace')}"
        return result
    if seconds > SLOW_S:  # once more: the first answer may have paid a cold start
        again = load.probe(url, opts.slow_timeout)
        if again[0] == status:
            seconds = min(seconds, again[1])
    if rt.expect is not None and result.features not in (None, rt.expect):
        result.note += f"{result.features} features, expected {rt.expect}"
    connections, duration, timeout = CONNECTIONS, opts.duration, 30.0
    if seconds > SLOW_S:
        result.mode = "slow"
        connections = WORKERS
        duration = min(max(opts.duration, 4 * seconds), 4 * opts.duration + 60)
        timeout = max(opts.slow_timeout, 2 * seconds + 10)
    result.connections = connections
    with server.peak_rss() as mem:
        figures = load.wrk(
            url, lua=lua, seconds=duration, connections=connections,
            threads=THREADS, timeout=timeout,
        )  # fmt: skip
    load.fill(result, figures)
    result.peak_mb, result.start_mb = round(mem["peak_mb"]), round(mem["start_mb"])
    result.extra["check_s"] = round(seconds, 3)
    return result


def _cancel_queries(pg: PostGIS) -> None:
    """Stop the database work a timed-out request left running."""
    with pg.connect() as conn:
        conn.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE "
            "datname = current_database() AND state = 'active' "
            "AND pid <> pg_backend_pid()"
        )
    time.sleep(2)


def _run_server(
    name: str,
    pg: PostGIS,
    types: list[RequestType],
    opts: Any,
    work: Path,
    lua: Path,
    console: Any,
) -> list[load.Result]:
    results = []
    with _server(name, pg, work, opts.data_dir, console) as server:
        fids = {layer: _first_id(server.base, name, layer)
                for layer in ("buildings", "points")}  # fmt: skip
        # Warm-up: both workers load their configuration and connections.
        warm = (
            server.base + f"/collections/{collection(name, 'buildings')}/items?limit=10"
        )
        load.wrk(warm, lua=lua, seconds=2, connections=4, threads=2, timeout=30)
        for rt in types:
            if name in rt.skip:
                result = load.Result(name, rt.id, path(name, rt, fids[rt.layer]))
                result.mode, result.note = "skipped", rt.skip_note
                results.append(result)
                console.log(f"{name:17} {rt.id:13} skipped")
                continue
            with console.status(f"{name}: {rt.label}"):
                server.wait_idle()
                try:
                    result = _measure(server, rt, fids[rt.layer], opts, lua, work)
                except Exception as exc:  # one request type must not end the run
                    result = load.Result(name, rt.id, path(name, rt, fids[rt.layer]))
                    result.mode, result.errors = "failed", 1
                    result.note = f"bench error: {exc}"[:300]
            results.append(result)
            if result.mode == "timeout":
                _cancel_queries(pg)
            p50 = f"{result.p50_ms:.0f}" if result.p50_ms is not None else "-"
            console.log(
                f"{name:17} {rt.id:13} {result.mode:7} {result.rps:9.2f}/s p50 {p50} "
                f"ms, {result.errors} err, peak {result.peak_mb} MB {result.note}"
            )
    return results


def run(ctx: BenchContext) -> list[Measurement]:
    """Load, serve, measure; prints and writes the markdown report."""
    opts, console = ctx.options, ctx.console
    load.check_tools()
    started = time.perf_counter()
    servers = list(opts.servers) or list(SERVERS)
    unknown = set(servers) - set(SERVERS)
    known_ids = [t.id for t in request_types(data.BUILDINGS, data.POINTS)]
    unknown |= set(opts.requests) - set(known_ids)
    if unknown:
        raise SystemExit(
            f"serving: unknown {', '.join(sorted(unknown))}; servers are "
            f"{', '.join(SERVERS)}; request types {', '.join(known_ids)}"
        )
    buildings, points = data.layers(
        opts.data_dir, opts.scale, regenerate=opts.regenerate, console=console
    )
    types = request_types(buildings.features, points.features)
    if opts.requests:
        types = [t for t in types if t.id in opts.requests]
    for name in servers:  # install peers before the clock of the run starts
        if name.startswith("pygeoapi"):
            peers.venv(opts.data_dir, "pygeoapi", console)
        elif name == "tipg":
            peers.venv(opts.data_dir, "tipg", console)
    setup_done = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="sdi-bench-serving-"))
    lua = load.lua_script(work)
    results: list[load.Result] = []
    try:
        with ctx.postgis(port=procs.port(PORTS["postgis"])) as pg:
            loaded = _load(ctx, pg, (buildings, points))
            anchors = _anchors(pg, loaded["versions"], work, opts.duration, console)
            for name in servers:
                console.rule(name)
                try:
                    results += _run_server(name, pg, types, opts, work, lua, console)
                except RuntimeError as exc:  # did not start: the others still run
                    console.log(f"{name} failed: {str(exc)[-1500:]}")
                    for rt in types:
                        result = load.Result(name, rt.id, "", mode="failed", errors=1)
                        result.note = f"server failed: {str(exc)[:200]}"
                        results.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finished = time.perf_counter()
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(opts),
        "data": [buildings.label, points.label],
        "duration": opts.duration,
        "load_timings": {k: round(v, 1) for k, v in loaded["timings"].items()},
        "setup_s": round(setup_done - started, 1),
        "run_s": round(finished - setup_done, 1),
        "versions": {
            "pygeoapi": peers.version(opts.data_dir / "peers" / "pygeoapi", "pygeoapi")
            if any(s.startswith("pygeoapi") for s in servers) else None,
            "tipg": peers.version(opts.data_dir / "peers" / "tipg", "tipg")
            if "tipg" in servers else None,
        },
    }  # fmt: skip
    text = markdown(types, servers, results, anchors, meta)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    out = opts.results_dir / f"serving-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.md"
    out.write_text(text)
    console.print(f"Report: {out}")
    measurements = []
    for r in results:
        m = Measurement(
            NAME,
            f"{r.server}:{r.request}",
            f"{r.server} {r.request}",
            r.request,
            features=max(0, r.requests - r.errors),
            runs=[r.seconds or 0.0],
        )
        m.extra = dataclasses.asdict(r)
        measurements.append(m)
    for key, figures in anchors.items():
        m = Measurement(
            NAME, f"pgbench:{key}", f"pgbench {key}", key,
            features=figures["transactions"], runs=[float(opts.duration)],
        )  # fmt: skip
        m.extra = figures
        measurements.append(m)
    if measurements:
        measurements[0].extra["meta"] = meta
    return measurements


def _command(opts: Any) -> str:
    args = [".venv/bin/python -m bench --only serving"]
    if opts.scale != 1.0:
        args.append(f"--scale {opts.scale:g}")
    args.append(f"--duration {opts.duration:g}")
    if list(opts.servers) != list(SERVERS):
        args.append(f"--servers {','.join(opts.servers)}")
    if opts.requests:
        args.append(f"--requests {','.join(opts.requests)}")
    return " ".join(args)
