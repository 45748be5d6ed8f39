"""Command line of ``python -m bench``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import report
from bench.context import BENCH_DIR, BenchContext, Options, machine_info
from bench.suites import SUITES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks for sdi. Results: a table on stdout and JSON in "
        "bench/results/. See bench/README.md.",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SUITES), metavar="SUITE",
        help=f"run only this suite (repeatable; one of: {', '.join(sorted(SUITES))})",
    )  # fmt: skip
    parser.add_argument(
        "--scale", type=float, default=1.0,
        help="data size factor; 1.0 = 300,000 building polygons (default)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="runs per case; the table shows the best and the median (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--formats", default="shp,gpkg",
        help="comma-separated input formats: shp (zipped Shapefile), gpkg",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=BENCH_DIR / "data",
        help="where generated data sets are kept (default bench/data)",
    )  # fmt: skip
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results",
        help="where result JSON files go (default bench/results)",
    )  # fmt: skip
    parser.add_argument(
        "--regenerate", action="store_true", help="generate the data sets again"
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the throwaway cluster's directory afterwards",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=10.0,
        help="serving: seconds of wrk per server and request type (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--servers", default="sdi,pygeoapi,pygeoapi-nocount,tipg",
        help="serving: comma-separated servers (default all four)",
    )  # fmt: skip
    parser.add_argument(
        "--requests", default="",
        help="serving: comma-separated request type ids (default all; see README)",
    )  # fmt: skip
    parser.add_argument(
        "--slow-timeout", type=float, default=60.0,
        help="serving: a single request with no answer after this many seconds "
        "is a time-out (default 60)",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the suites")
    return parser


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the selected suites; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name}: {suite.description}")
        return 0
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - {"shp", "gpkg"}
    if unknown or not formats:
        parser.error(f"--formats takes shp and/or gpkg, not {args.formats!r}")
    if args.scale <= 0 or args.repeat < 1:
        parser.error("--scale must be positive and --repeat at least 1")
    ctx = BenchContext(
        Options(
            scale=args.scale,
            repeat=args.repeat,
            formats=formats,
            data_dir=args.data_dir,
            results_dir=args.results_dir,
            regenerate=args.regenerate,
            keep=args.keep,
            duration=args.duration,
            servers=_names(args.servers),
            requests=_names(args.requests),
            slow_timeout=args.slow_timeout,
        )
    )
    meta = machine_info() | {
        "options": {
            "scale": args.scale,
            "repeat": args.repeat,
            "formats": list(formats),
            "duration": args.duration,
            "servers": list(_names(args.servers)),
        }
    }
    for name in args.only or sorted(SUITES):
        suite = SUITES[name]
        ctx.console.rule(f"{suite.name}: {suite.description}")
        measurements = suite.run(ctx)
        if suite.table:
            report.show(ctx.console, suite.name, measurements)
        path = report.save(ctx.options.results_dir, suite.name, measurements, meta)
        ctx.console.print(f"Results: {path}")
    return 0
