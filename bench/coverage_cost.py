"""What one coverage response costs per cell, by output format.

``python -m bench.coverage_cost [--side N]`` writes a float32 DEM COG of
N x N cells (default 2048) to a temporary directory and, in a fresh process
per format, asks :class:`sdi.providers.coverage.CogCoverageProvider` for the
whole grid and reads the body to the end, as the server does. It prints the
peak memory the request added (the highest resident set, sampled every
millisecond, minus the one before; the process is warmed up by a small
request first), the time and the body's size, each per
cell. ``json (one dumps)`` is CoverageJSON built the way sdi did before it
was streamed: every value a Python number, the document one ``json.dumps``.

The figures set the defaults of SDI_MAX_COVERAGE_CELLS (GeoTIFF, PNG) and
SDI_MAX_COVERAGE_JSON_CELLS (see bench/README.md, "Coverage cost per cell").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.shutil import copy as gdal_copy
from rasterio.transform import from_origin

from sdi.providers.coverage import CogCoverageProvider

FORMATS = ("GTiff", "png", "json", "json (one dumps)")
_ORIGIN = (820000.0, 840000.0)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _raster_config(path: Path, side: int) -> dict[str, Any]:
    with rasterio.open(path) as src:
        stats = src.stats(indexes=[1], approx=True)[0]
        return {
            "width": side,
            "height": side,
            "crs_wkt": src.crs.to_wkt(),
            "crs_uri": "http://www.opengis.net/def/crs/EPSG/0/2326",
            "transform": list(src.transform)[:6],
            "bounds": list(src.bounds),
            "bounds_wgs84": [114.1, 22.3, 114.2, 22.4],
            "overviews": src.overviews(1),
            "bands": [
                {
                    "index": 1,
                    "name": "elevation",
                    "dtype": "float32",
                    "nodata": -9999.0,
                    "stats": {
                        "min": stats.min,
                        "max": stats.max,
                        "mean": stats.mean,
                        "stddev": stats.std,
                    },
                }
            ],
        }


def write_cog(directory: Path, side: int) -> dict[str, Any]:
    """A float32 DEM COG of ``side`` x ``side`` cells; its provider definition."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float64) / side
    values = 300 * np.sin(3 * cols) * np.cos(2 * rows) + rng.normal(0, 0.4, rows.shape)
    plain = directory / "dem.tif"
    with rasterio.open(
        plain,
        "w",
        driver="GTiff",
        width=side,
        height=side,
        count=1,
        dtype="float32",
        crs="EPSG:2326",
        transform=from_origin(*_ORIGIN, 2.0, 2.0),
        nodata=-9999.0,
        tiled=True,
    ) as dst:
        dst.write(values.astype(np.float32), 1)
    cog = directory / "dem-cog.tif"
    gdal_copy(plain, cog, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES")
    return {
        "type": "coverage",
        "name": "sdi.providers.coverage.CogCoverageProvider",
        "data": str(cog),
        "format": {"name": "GTiff"},
        "options": {
            "layer": "bench",
            "version": 1,
            "max_cells": side * side * 4,
            "max_json_cells": side * side * 4,
            "raster": _raster_config(cog, side),
        },
    }


def _one_dumps(provider: CogCoverageProvider) -> bytes:
    """CoverageJSON as sdi built it before streaming (for comparison)."""
    body = b"".join(provider.query(format_="json"))  # type: ignore[arg-type]
    document = json.loads(body)
    return json.dumps(document).encode()


def _rss() -> int:
    """This process's resident set, bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


class _PeakSampler(threading.Thread):
    """The highest resident set seen, sampled every millisecond."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.001):
            self.peak = max(self.peak, _rss())


def measure(definition: dict[str, Any], fmt: str) -> dict[str, float]:
    """Peak memory added, seconds and body bytes of one whole-grid request."""
    provider = CogCoverageProvider(definition)
    provider.query(format_="GTiff", scale_size="E(8),N(8)")  # warm up
    before = _rss()
    sampler = _PeakSampler()
    sampler.start()
    started = time.perf_counter()
    if fmt == "json (one dumps)":
        size = len(_one_dumps(provider))
    else:
        body = provider.query(format_=fmt)
        size = (
            len(body) if isinstance(body, bytes) else sum(len(chunk) for chunk in body)
        )
    elapsed = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    peak = max(sampler.peak, _rss())
    return {"kib": (peak - before) / 1024, "seconds": elapsed, "bytes": size}


def main() -> None:
    """Measure every format in its own process; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--definition", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        definition = json.loads(Path(args.definition).read_text())
        print(json.dumps(measure(definition, args.child)))
        return
    cells = args.side * args.side
    with tempfile.TemporaryDirectory() as tmp:
        definition = write_cog(Path(tmp), args.side)
        def_path = Path(tmp) / "definition.json"
        def_path.write_text(json.dumps(definition))
        print(f"{args.side} x {args.side} float32 cells = {cells:,}")
        print("| format | peak memory added, MB | bytes/cell (memory) | s "
              "| µs/cell | body MB | body bytes/cell |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|")
        for fmt in FORMATS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.coverage_cost", "--child", fmt,
                 "--definition", str(def_path)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            m = json.loads(out.stdout)
            print(
                f"| {fmt} | {m['kib'] / 1024:.0f} | {m['kib'] * 1024 / cells:.1f} "
                f"| {m['seconds']:.2f} | {m['seconds'] * 1e6 / cells:.2f} "
                f"| {m['bytes'] / 1e6:.1f} | {m['bytes'] / cells:.1f} |"
            )


if __name__ == "__main__":
    main()
