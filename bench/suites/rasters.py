"""Rasters: a 10,000 x 10,000 DEM as a COG, map tiles and coverage subsets over HTTP.

Data: a float32 DEM in EPSG:2326 (2 m cells, 20 km square over the New
Territories), smooth terrain plus noise, with a nodata lake; generated once
into ``bench/data/dem-<side>.tif`` (a plain tiled GeoTIFF, as agencies
upload them) and reused while its generator tag matches.

Cases, each timed ``--repeat`` times:

a. ingest: ``sdi.ingest.raster.ingest_raster`` (validate, COG, statistics,
   version row) against ``gdal_translate -of COG`` with the same creation
   options (the baseline);
b. map tiles: 256 x 256 PNGs from ``/collections/{id}/map/tiles/
   WebMercatorQuad/{z}/{y}/{x}`` at zoom 16 (read at full resolution) and 14
   (from the 4x overview), distinct tiles inside the DEM, one client in
   sequence and four clients at once;
c. coverage subsets: 1024 x 1024 GeoTIFFs from ``/collections/{id}/coverage
   ?f=GTiff&subset=E(..),N(..)`` at distinct grid-aligned places, beside
   ``gdal_translate -srcwin`` of the same windows from the same COG (the
   physical anchor: a process per subset) and the same read and GeoTIFF
   encoding done in-process with rasterio (the library floor, no HTTP);
d. titiler, when ``/tmp/titiler-venv`` holds it (it is never a project
   dependency): the same tiles (rescaled with the same minimum..maximum,
   viridis) and the same subsets (``/cog/bbox``), on the same COG.

The server is gunicorn as ``sdi serve`` runs it (gthread, 2 workers x 4
threads); titiler runs under uvicorn with 2 workers. Everything runs on one
machine, with the COG in the OS page cache after a warm-up pass.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import requests
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from rasterio.windows import Window

from bench.context import REPO_DIR, BenchContext, free_port
from bench.timing import Measurement, timed
from sdi.ingest.raster import ingest_raster
from sdi.registry import LayerInput, create_agency, create_layer, get_licence, publish

NAME = "rasters"
DESCRIPTION = (
    "10,000 x 10,000 float32 DEM (EPSG:2326): ingest to COG vs gdal_translate; "
    "256x256 map tiles and 1024x1024 GeoTIFF subsets over HTTP vs "
    "gdal_translate -srcwin (and titiler when installed in /tmp/titiler-venv)"
)
SLUG = "bench_dem"
_GENERATOR = "dem/1"  # bump when the generated content changes
_ORIGIN = (820000.0, 840000.0)  # upper left, EPSG:2326 easting/northing
_RES = 2.0
_NODATA = -9999.0
_COG_OPTIONS = (
    "BLOCKSIZE=512", "COMPRESS=DEFLATE", "PREDICTOR=YES", "LEVEL=6",
    "OVERVIEWS=AUTO", "RESAMPLING=AVERAGE", "BIGTIFF=IF_SAFER",
    "NUM_THREADS=ALL_CPUS",
)  # fmt: skip
_TILES = 60  # tile requests per run and zoom
_SUBSETS = 30  # subset requests per run
_SUBSET = 1024
_CLIENTS = 4
_TITILER = Path("/tmp/titiler-venv")
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


# -- data ---------------------------------------------------------------------


def _side(scale: float) -> int:
    """Grid side: 10,000 at --scale 1; never below 2,048 (a 1024 subset fits)."""
    return max(2048, round(10_000 * math.sqrt(scale)))


def dem(data_dir: Path, scale: float, *, regenerate: bool, console: Any) -> Path:
    """The benchmark DEM (generated when missing or stale)."""
    side = _side(scale)
    path = data_dir / f"dem-{side}.tif"
    if path.exists() and not regenerate:
        with rasterio.open(path) as ds:
            if ds.tags().get("SDI_BENCH_GENERATOR") == _GENERATOR:
                return path
    data_dir.mkdir(parents=True, exist_ok=True)
    console.log(f"Generating {path.name}: {side:,} x {side:,} float32 DEM")
    rng = np.random.default_rng(2326)
    cols = np.arange(side, dtype=np.float64) / side
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 1,
        "dtype": "float32", "crs": "EPSG:2326", "nodata": _NODATA,
        "transform": from_origin(*_ORIGIN, _RES, _RES),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    partial = path.with_suffix(".tmp.tif")
    with rasterio.open(partial, "w", **profile) as dst:
        for row0 in range(0, side, 512):
            rows = min(512, side - row0)
            y = (np.arange(row0, row0 + rows, dtype=np.float64) / side)[:, None]
            x = cols[None, :]
            z = (
                350 * np.exp(-((x - 0.35) ** 2 + (y - 0.4) ** 2) * 9)
                + 220 * np.exp(-((x - 0.75) ** 2 + (y - 0.7) ** 2) * 14)
                + 40 * np.sin(11 * x + 3 * y) * np.cos(7 * y)
                + 60 * x
                + rng.normal(0.0, 0.4, (rows, side))
            )
            z[(x - 0.6) ** 2 + (y - 0.25) ** 2 < 0.004] = _NODATA  # a reservoir
            dst.write(z.astype(np.float32), 1, window=Window(0, row0, side, rows))
        dst.update_tags(SDI_BENCH_GENERATOR=_GENERATOR)
        dst.set_band_description(1, "elevation")
    partial.replace(path)
    return path


# -- servers ------------------------------------------------------------------


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _process(
    args: list[str], env: dict[str, str], url: str, what: str
) -> Iterator[None]:
    # Output goes to a file: an unread pipe fills up and stalls the server.
    log = Path(tempfile.mkstemp(prefix=f"sdi-bench-{what}-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait(url, process, log, what)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.unlink(missing_ok=True)


def _sdi_server(
    database_url: str, var_dir: Path, port: int
) -> contextlib.AbstractContextManager[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDI_")}
    env |= {
        "SDI_DATABASE_URL": database_url,
        "SDI_VAR_DIR": str(var_dir),
        "SDI_CONFIG_DIR": str(REPO_DIR / "config"),
        "SDI_COLLECTIONS_DIR": str(var_dir / "collections"),
        "SDI_PORT": str(port),
    }
    args = [
        GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "4", "--timeout", "120",
        "sdi.cli.serve:wsgi_from_env()",
    ]  # fmt: skip
    return _process(args, env, f"http://127.0.0.1:{port}/conformance", "gunicorn")


def _titiler_server(port: int) -> contextlib.AbstractContextManager[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDI_", "PYTHON"))}
    env["GDAL_CACHEMAX"] = "512"
    args = [
        str(_TITILER / "bin" / "uvicorn"), "titiler.application.main:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--log-level", "warning",
    ]  # fmt: skip
    return _process(args, env, f"http://127.0.0.1:{port}/healthz", "titiler")


def titiler_available() -> bool:
    """Whether a throwaway titiler install exists (never installed by sdi)."""
    return (_TITILER / "bin" / "uvicorn").exists() and subprocess.run(
        [str(_TITILER / "bin" / "python"), "-c", "import titiler.application"],
        capture_output=True, check=False,
    ).returncode == 0  # fmt: skip


# -- requests -----------------------------------------------------------------


def _tiles(
    bounds_wgs84: tuple[float, ...], z: int, count: int
) -> list[tuple[int, int, int]]:
    """``count`` distinct tiles (z, y, x) inside the DEM, in a shuffled order."""
    west, south, east, north = bounds_wgs84
    n = 1 << z

    def tile(lon: float, lat: float) -> tuple[int, int]:
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return y, x

    y0, x0 = tile(west, north)
    y1, x1 = tile(east, south)
    inner = [(z, y, x) for y in range(y0 + 1, y1) for x in range(x0 + 1, x1)]
    inner = inner or [(z, y, x) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
    rng = np.random.default_rng(z)
    picked = rng.permutation(len(inner))[:count]
    # A small DEM has few tiles at this zoom: then they are asked for again.
    return [inner[picked[i % len(picked)]] for i in range(count)]


def _windows(side: int, count: int) -> list[Window]:
    rng = np.random.default_rng(1024)
    top = side - _SUBSET
    return [
        Window(int(c), int(r), _SUBSET, _SUBSET)
        for c, r in zip(
            rng.integers(0, top, count), rng.integers(0, top, count), strict=True
        )
    ]


def _window_bounds(window: Window) -> tuple[float, float, float, float]:
    left = _ORIGIN[0] + window.col_off * _RES
    top = _ORIGIN[1] - window.row_off * _RES
    return left, top - window.height * _RES, left + window.width * _RES, top


def _fetch_all(
    urls: list[str], clients: int, check: Callable[[requests.Response], None]
) -> None:
    """GET every URL, ``clients`` at a time, each client on its own connection."""
    chunks = [urls[i::clients] for i in range(clients)]

    def worker(part: list[str]) -> None:
        with requests.Session() as session:
            for url in part:
                check(session.get(url, timeout=120))

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, part) for part in chunks]:
            future.result()


def _png(response: requests.Response) -> None:
    if response.status_code != 200 or response.headers["Content-Type"] != "image/png":
        raise RuntimeError(f"tile failed: {response.status_code} {response.text[:200]}")


def _tiff(response: requests.Response) -> None:
    if response.status_code != 200 or not response.content.startswith(b"II*"):
        raise RuntimeError(
            f"subset failed: {response.status_code} {response.text[:200]}"
        )


def _checked_tiff(response: requests.Response) -> None:
    _tiff(response)
    with MemoryFile(response.content) as mem, mem.open() as ds:
        if (ds.width, ds.height) != (_SUBSET, _SUBSET) or ds.crs.to_epsg() != 2326:
            raise RuntimeError(f"subset is {ds.width}x{ds.height} in {ds.crs}")


def _gdal_translate(cog: Path, windows: list[Window], out_dir: Path) -> None:
    for i, w in enumerate(windows):
        subprocess.run(
            ["gdal_translate", "-q", "-srcwin", str(w.col_off), str(w.row_off),
             str(w.width), str(w.height), str(cog), str(out_dir / f"s{i}.tif")],
            check=True,
        )  # fmt: skip


def _rasterio_subsets(cog: Path, windows: list[Window]) -> None:
    with rasterio.open(cog) as src:
        for w in windows:
            data = src.read(window=w)
            profile = {
                "driver": "GTiff", "width": w.width, "height": w.height, "count": 1,
                "dtype": "float32", "crs": src.crs, "nodata": src.nodata,
                "transform": src.window_transform(w),
            }  # fmt: skip
            with MemoryFile() as mem:
                with mem.open(**profile) as out:
                    out.write(data)
                mem.read()


# -- the suite ----------------------------------------------------------------


def run(ctx: BenchContext) -> list[Measurement]:
    """Time a to d above; returns the measurements."""
    opts, console = ctx.options, ctx.console
    source = dem(opts.data_dir, opts.scale, regenerate=opts.regenerate, console=console)
    side = _side(opts.scale)
    label = f"{source.name} ({side:,} x {side:,} float32, EPSG:2326)"
    results: list[Measurement] = []

    def case(
        case_id: str, text: str, n: int, baseline: str | None = None
    ) -> Measurement:
        m = Measurement(NAME, case_id, text, label, n, baseline=baseline)
        results.append(m)
        return m

    with ctx.postgis() as pg, pg.connect() as conn:
        settings = pg.settings()
        agency = create_agency(conn, "bench", "Benchmark", actor="bench")
        create_layer(
            conn, agency,
            LayerInput(slug=SLUG, title_en="Benchmark DEM", kind="raster",
                       licence_id=get_licence(conn, "cc-by-4.0").id),
            actor="bench",
        )  # fmt: skip

        # a. ingest
        anchor = case("gdal-cog", "gdal_translate -of COG (same options)", 1)
        ingest = case(
            "sdi-ingest", "sdi ingest_raster (COG + stats + version)", 1, "gdal-cog"
        )
        scratch = Path(tempfile.mkdtemp(prefix="sdi-bench-raster-"))
        try:
            for r in range(1, opts.repeat + 1):
                target = scratch / "gdal-cog.tif"
                args = ["gdal_translate", "-q", "-of", "COG"]
                for option in _COG_OPTIONS:
                    args += ["-co", option]
                with console.status(f"gdal_translate -of COG, run {r}"):
                    seconds, _ = timed(
                        subprocess.run, [*args, str(source), str(target)], check=True
                    )
                anchor.runs.append(seconds)
                console.log(f"gdal_translate -of COG run {r}: {seconds:.1f} s")
                target.unlink()
                with console.status(f"ingest_raster, run {r}"):
                    seconds, version = timed(
                        ingest_raster, conn, settings, source, layer=SLUG, actor="bench"
                    )
                ingest.runs.append(seconds)
                ingest.extra["report"] = version.report
                console.log(
                    f"ingest_raster run {r}: {seconds:.1f} s (v{version.number})"
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        publish(conn, SLUG, version.number, actor="bench")
        grid = version.schema["raster"]
        cog = settings.raster_dir / grid["file"]
        stats = grid["bands"][0]["stats"]
        bounds = tuple(grid["bounds_wgs84"])
        windows = _windows(side, _SUBSETS)

        port = free_port()
        sdi_url = f"http://127.0.0.1:{port}/collections/{SLUG}"
        tile_sets = {z: _tiles(bounds, z, _TILES) for z in (16, 14)}
        with _sdi_server(pg.url, settings.var_dir, port):
            # Warm-up: every worker builds its configuration; pages get cached.
            _fetch_all([f"{sdi_url}/map/tiles/WebMercatorQuad/{z}/{y}/{x}"
                        for z, y, x in tile_sets[16][:8]] * 2, 4, _png)  # fmt: skip
            subset_urls = [
                f"{sdi_url}/coverage?f=GTiff&subset=E({b[0]}:{b[2]}),N({b[1]}:{b[3]})"
                for b in map(_window_bounds, windows)
            ]
            _checked_tiff(requests.get(subset_urls[0], timeout=60))
            with rasterio.open(cog) as ds:  # the OS cache holds the COG, as for gdal
                for w in windows:
                    ds.read(window=w)
            for z, tiles in tile_sets.items():
                urls = [
                    f"{sdi_url}/map/tiles/WebMercatorQuad/{z}/{y}/{x}"
                    for z, y, x in tiles
                ]
                for clients in (1, _CLIENTS):
                    m = case(f"sdi-tile-z{z}-c{clients}",
                             f"sdi tile z{z}, {clients} client(s)", len(urls),
                             f"titiler-tile-z{z}-c{clients}")  # fmt: skip
                    for _ in range(opts.repeat):
                        seconds, _ = timed(_fetch_all, urls, clients, _png)
                        m.runs.append(seconds)
                    console.log(f"{m.label}: {1000 * m.best / len(urls):.1f} ms/tile")
            for clients in (1, _CLIENTS):
                m = case(f"sdi-subset-c{clients}",
                         f"sdi coverage 1024x1024 GTiff, {clients} client(s)",
                         len(subset_urls), "gdal-srcwin")  # fmt: skip
                for _ in range(opts.repeat):
                    seconds, _ = timed(_fetch_all, subset_urls, clients, _tiff)
                    m.runs.append(seconds)
                console.log(
                    f"{m.label}: {1000 * m.best / len(subset_urls):.1f} ms/subset"
                )

        gdal = case(
            "gdal-srcwin", "gdal_translate -srcwin (a process each)", len(windows)
        )
        floor = case("rasterio-inproc", "rasterio in-process read + GTiff (no HTTP)",
                     len(windows), "gdal-srcwin")  # fmt: skip
        out_dir = Path(tempfile.mkdtemp(prefix="sdi-bench-srcwin-"))
        try:
            for _ in range(opts.repeat):
                seconds, _ = timed(_gdal_translate, cog, windows, out_dir)
                gdal.runs.append(seconds)
                seconds, _ = timed(_rasterio_subsets, cog, windows)
                floor.runs.append(seconds)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        console.log(
            f"gdal_translate -srcwin: {1000 * gdal.best / len(windows):.1f} ms/subset"
        )

        if titiler_available():
            results += _titiler(
                opts.repeat, cog, stats, tile_sets, windows, label, console
            )
        else:
            console.log(f"titiler not measured: no install in {_TITILER}")
    return results


def _titiler(
    repeat: int,
    cog: Path,
    stats: dict[str, float],
    tile_sets: dict[int, list[tuple[int, int, int]]],
    windows: list[Window],
    label: str,
    console: Any,
) -> list[Measurement]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/cog"
    style = f"rescale={stats['min']},{stats['max']}&colormap_name=viridis"
    out: list[Measurement] = []
    with _titiler_server(port):
        tile_url = (
            base
            + "/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url="
            + str(cog)
            + "&"
            + style
        )
        _fetch_all(
            [tile_url.format(z=z, x=x, y=y) for z, y, x in tile_sets[16][:8]] * 2,
            4,
            _png,
        )
        for z, tiles in tile_sets.items():
            urls = [tile_url.format(z=z, x=x, y=y) for z, y, x in tiles]
            for clients in (1, _CLIENTS):
                m = Measurement(
                    NAME, f"titiler-tile-z{z}-c{clients}",
                    f"titiler tile z{z}, {clients} client(s)", label, len(urls),
                )  # fmt: skip
                for _ in range(repeat):
                    seconds, _ = timed(_fetch_all, urls, clients, _png)
                    m.runs.append(seconds)
                console.log(f"{m.label}: {1000 * m.best / len(urls):.1f} ms/tile")
                out.append(m)
        subset_urls = [
            f"{base}/bbox/{b[0]},{b[1]},{b[2]},{b[3]}/{_SUBSET}x{_SUBSET}.tif?url={cog}"
            "&coord_crs=EPSG:2326&dst_crs=EPSG:2326"
            for b in map(_window_bounds, windows)
        ]
        _checked_tiff(requests.get(subset_urls[0], timeout=60))
        for clients in (1, _CLIENTS):
            m = Measurement(
                NAME, f"titiler-subset-c{clients}",
                f"titiler /cog/bbox 1024x1024 GTiff, {clients} client(s)",
                label, len(subset_urls), baseline="gdal-srcwin",
            )  # fmt: skip
            for _ in range(repeat):
                seconds, _ = timed(_fetch_all, subset_urls, clients, _tiff)
                m.runs.append(seconds)
            console.log(f"{m.label}: {1000 * m.best / len(subset_urls):.1f} ms/subset")
            out.append(m)
    return out
