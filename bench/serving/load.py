"""Load generators: wrk for HTTP, pgbench for the PostgreSQL anchor, ogr2ogr exports."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

#: wrk reports through this script: one JSON line at the end.
_WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass
class Result:
    """What one server did for one request type."""

    server: str
    request: str
    url: str
    mode: str = "wrk"  # wrk, slow (few connections), timeout, failed, skipped
    connections: int = 0
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0  # non-2xx/3xx responses, socket errors and time-outs
    rps: float = 0.0  # successful responses per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_mb: float | None = None
    start_mb: float | None = None
    status: int | None = None  # of the check request
    body_bytes: int | None = None
    features: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def check_tools() -> None:
    """wrk, pgbench and ogr2ogr must be on PATH."""
    missing = [t for t in ("wrk", "pgbench", "ogr2ogr") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"missing {', '.join(missing)}: "
            "apt-get install wrk postgresql-client gdal-bin"
        )


#: wrk asks for ``prefix`` followed by an offset drawn uniformly from
#: [lo, hi] for every request; each thread has its own generator, seeded by
#: its number (the same sequences for every server).
_WRK_RANDOM_OFFSET_LUA = r"""
local prefix, lo, hi = %(prefix)s, %(lo)d, %(hi)d
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
init = function(args)
  math.randomseed(7919 * seed)
  math.random(); math.random()
end
request = function()
  return wrk.format(nil, prefix .. string.format("%%d", math.random(lo, hi)))
end
"""


def lua_script(
    work: Path,
    name: str = "report",
    prefix: str | None = None,
    offsets: tuple[int, int] | None = None,
) -> Path:
    """The wrk script ``work/<name>.lua``: the reporter, and with ``prefix`` and
    ``offsets`` a request function asking for ``prefix<offset>``, a random
    offset in [lo, hi] every time."""
    path = work / f"{name}.lua"
    text = _WRK_LUA
    if prefix is not None and offsets is not None:
        # A JSON string of ASCII is a Lua string literal.
        values = {"prefix": json.dumps(prefix), "lo": offsets[0], "hi": offsets[1]}
        text = _WRK_RANDOM_OFFSET_LUA % values + text
    path.write_text(text)
    return path


def probe(url: str, timeout: float) -> tuple[int | None, float, bytes, str]:
    """One GET: status (None: failed), seconds, body, error text."""
    start = time.perf_counter()
    try:
        # As wrk asks: no compression.
        response = requests.get(
            url, timeout=timeout, headers={"Accept-Encoding": "identity"}
        )
    except requests.Timeout:
        return None, time.perf_counter() - start, b"", f"no answer in {timeout:.0f} s"
    except requests.RequestException as exc:
        return None, time.perf_counter() - start, b"", str(exc)[:200]
    return response.status_code, time.perf_counter() - start, response.content, ""


def count_features(body: bytes) -> int | None:
    """Features in a GeoJSON body (1 for a single Feature), None if not GeoJSON."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        return len(doc.get("features") or [])
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return 1
    return None


def wrk(
    url: str,
    *,
    lua: Path,
    seconds: float,
    connections: int,
    threads: int,
    timeout: float,
) -> dict[str, Any]:
    """Run wrk; its figures (see ``_WRK_LUA``)."""
    args = [
        "wrk", "-t", str(min(threads, connections)), "-c", str(connections),
        "-d", f"{max(1, math.ceil(seconds))}s", "--timeout", f"{math.ceil(timeout)}s",
        "-s", str(lua), url,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")


def fill(result: Result, figures: dict[str, Any]) -> None:
    """Copy wrk's figures into ``result``."""
    seconds = figures["duration_us"] / 1e6
    errors = (
        figures["status"] + figures["connect"] + figures["read"] + figures["write"]
        + figures["timeout"]
    )  # fmt: skip
    ok = max(0, figures["requests"] - figures["status"])
    result.seconds = round(seconds, 2)
    result.requests = figures["requests"]
    result.errors = errors
    result.rps = round(ok / seconds, 2) if seconds > 0 else 0.0
    if figures["requests"]:
        result.p50_ms = round(figures["p50_us"] / 1000, 1)
        result.p99_ms = round(figures["p99_us"] / 1000, 1)
    result.extra["wrk"] = figures


def pgbench(url_parts: dict[str, Any], script: Path, seconds: float) -> dict[str, Any]:
    """``pgbench -n -f script -c 16 -j 2 -T seconds``: tps and latency."""
    args = [
        "pgbench", "-n", "-f", str(script), "-c", "16", "-j", "2",
        "-T", str(max(1, math.ceil(seconds))), "-h", url_parts["host"],
        "-p", str(url_parts["port"]), "-U", url_parts["user"], url_parts["dbname"],
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr[-1000:]}")
    tps = re.search(r"tps = ([0-9.]+) \(without initial", done.stdout)
    latency = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    return {
        "tps": float(tps.group(1)) if tps else 0.0,
        "latency_ms": float(latency.group(1)) if latency else None,
        "transactions": int(count.group(1)) if count else 0,
        "args": " ".join(args),
    }


def ogr_export(
    base: str, collection: str, out: Path, page_size: int, timeout: float
) -> tuple[float, int | None, str]:
    """``ogr2ogr -f GPKG out OAPIF:base collection``: seconds, features, error."""
    out.unlink(missing_ok=True)
    args = [
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}", collection,
        "-oo", f"PAGE_SIZE={page_size}", "-nln", "export",
    ]  # fmt: skip
    start = time.perf_counter()
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None, f"no result in {timeout:.0f} s"
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not out.exists():
        return seconds, None, (done.stderr.strip().splitlines() or ["failed"])[-1][:200]
    info = subprocess.run(
        ["ogrinfo", "-so", "-ro", str(out), "export"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Feature Count: (\d+)", info.stdout)
    out.unlink(missing_ok=True)
    return seconds, int(found.group(1)) if found else None, ""


def run_checked(args: list[str]) -> None:
    """Run a command; its stderr in the exception when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()[-2000:]}")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message, one level deep."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield number, buf[i : i + size]
            i += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield number, buf[i : i + width]
            i += width
        else:
            raise ValueError(f"protobuf wire type {wire}")


def mvt_summary(body: bytes) -> dict[str, Any] | None:
    """Layers of a Mapbox vector tile: features, attribute names and extent each."""
    layers: dict[str, Any] = {}
    try:
        for number, value in _fields(body):
            if number != 3 or not isinstance(value, bytes):
                continue
            name, features, keys, extent = "", 0, [], 4096
            for lnum, lval in _fields(value):
                if lnum == 1 and isinstance(lval, bytes):
                    name = lval.decode()
                elif lnum == 2:
                    features += 1
                elif lnum == 3 and isinstance(lval, bytes):
                    keys.append(lval.decode())
                elif lnum == 5 and isinstance(lval, int):
                    extent = lval
            layers[name] = {"features": features, "keys": keys, "extent": extent}
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return layers or None
