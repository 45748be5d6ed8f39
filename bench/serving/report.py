"""The serving suite's report: markdown tables of rates, latencies, memory and goals."""

from __future__ import annotations

from typing import Any, Protocol

from bench.context import machine_info
from bench.serving.load import Result

#: Goals (ratios of successful requests per second, same machine, same run).
STOCK_GOAL = 3.0  # sdi / stock pygeoapi
PEER_GOAL = 1.5  # sdi / max(tipg, pygeoapi count:false)
TILE_GOAL = 1.5  # sdi tile / tipg tile
ANCHOR_GOAL = 0.5  # sdi limit=1000 / pgbench of the same body
FLAT_GOAL = 1.25  # sdi peak RSS at limit=10000 / at limit=10


class _Type(Protocol):
    id: str
    label: str
    kind: str


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if 0 < value < 1:
        return f"{value:.3f}"
    return f"{value:,.{digits}f}"


def _rate(r: Result | None) -> str:
    if r is None:
        return "–"
    if r.mode in ("failed", "timeout", "skipped"):
        return r.mode
    if r.request.endswith("export"):
        return f"{r.seconds:,.1f} s"
    return _num(r.rps)


def _ok(r: Result | None) -> bool:
    return r is not None and r.mode not in ("failed", "timeout") and r.rps > 0


def _verdict(value: float | None, goal: float, sdi_ok: bool) -> tuple[str, bool]:
    """The ratio with its goal beside it, and whether it is met."""
    if not sdi_ok:
        return f"sdi failed (goal ≥ {goal:g})", False
    if value is None:
        return f"∞, peer failed (goal ≥ {goal:g})", True
    return f"{value:.2f} (goal ≥ {goal:g})", value >= goal


def _against(
    by: dict[tuple[str, str], Result],
    rid: str,
    names: tuple[str, ...],
    goal: float,
    checks: list[bool],
) -> str:
    """sdi's rate over the best of ``names`` (appends the goal's check).

    A skipped peer is not measured: no ratio against it (not a rate of 0).
    """
    present = [
        by[(n, rid)] for n in names if (n, rid) in by and by[(n, rid)].mode != "skipped"
    ]
    if not present:
        return "–"
    sdi = by[("sdi", rid)]
    best = max((p.rps if _ok(p) else 0.0) for p in present)
    sdi_ok = _ok(sdi)
    text, ok = _verdict(sdi.rps / best if sdi_ok and best > 0 else None, goal, sdi_ok)
    checks.append(ok)
    return text


def markdown(
    types: list[Any],
    servers: list[str],
    results: list[Result],
    anchors: dict[str, dict[str, Any]],
    meta: dict[str, Any],
) -> str:
    """The whole report as markdown."""
    by = {(r.server, r.request): r for r in results}
    machine = machine_info()
    lines = [
        f"# Serving benchmark, {meta['date']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB; {machine['platform']}; sdi "
        f"{machine['sdi_commit'][:10]}; pygeoapi {meta['versions'].get('pygeoapi')}; "
        f"tipg {meta['versions'].get('tipg')}  ",
        f"Data: {', '.join(meta['data'])}  ",
        f"Load: {', '.join(f'{k} {v} s' for k, v in meta['load_timings'].items())}  ",
        f"Setup (data, venvs) {meta['setup_s']} s; run {meta['run_s']} s "
        f"(loading, anchors, servers)  ",
        f"wrk: {2} threads, 16 connections, {meta['duration']:g} s per request type "
        "(slow requests: 2 connections); rates count 2xx responses only.",
        "",
        "## Per server and request type",
        "",
        "| request | server | mode | req/s | p50 ms | p99 ms | errors | peak MB "
        "| Δ MB | body KiB | features | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for rt in types:
        for server in servers:
            r = by.get((server, rt.id))
            if r is None:
                continue
            rate = _rate(r) if rt.kind == "export" else (
                _num(r.rps) if _ok(r) else r.mode
            )  # fmt: skip
            body = _num(r.body_bytes / 1024) if r.body_bytes else "–"
            growth = (
                _num(r.peak_mb - r.start_mb, 0)
                if r.peak_mb is not None and r.start_mb is not None
                else "–"
            )
            lines.append(
                f"| {rt.label} | {server} | {r.mode} | {rate} | {_num(r.p50_ms)} | "
                f"{_num(r.p99_ms)} | {r.errors} | {_num(r.peak_mb, 0)} | {growth} | "
                f"{body} | "
                f"{r.features if r.features is not None else '–'} | "
                f"{r.note.replace('|', '/')} |"
            )
    lines += [
        "",
        "## Goals (ratios of successful requests per second; export: of 1 / time)",
        "",
        f"Goals: sdi / stock pygeoapi ≥ {STOCK_GOAL:g}; sdi / max(tipg, pygeoapi "
        f"count:false) ≥ {PEER_GOAL:g}; vector tile sdi / tipg ≥ {TILE_GOAL:g}; "
        f"pages of 1000 features: sdi / pgbench of the same body ≥ {ANCHOR_GOAL:g}. "
        "Each ratio shows its goal; a peer that failed counts as rate 0, a skipped "
        "one gives no ratio.",
        "",
        "| request | sdi | pygeoapi | pygeoapi count:false | tipg | sdi / stock | "
        "sdi / best peer | sdi / tipg tile | pgbench tps | sdi / pgbench | goals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    met_all = True
    for rt in types:
        sdi = by.get(("sdi", rt.id))
        if sdi is None:
            continue
        sdi_ok = _ok(sdi)
        cells = [_rate(by.get((s, rt.id))) for s in
                 ("sdi", "pygeoapi", "pygeoapi-nocount", "tipg")]  # fmt: skip
        checks: list[bool] = []

        stock = _against(by, rt.id, ("pygeoapi",), STOCK_GOAL, checks)
        peer = _against(by, rt.id, ("tipg", "pygeoapi-nocount"), PEER_GOAL, checks)
        tile = (
            _against(by, rt.id, ("tipg",), TILE_GOAL, checks)
            if rt.kind == "tile"
            else ""
        )
        anchor = anchors.get(rt.id)
        tps = anchor_ratio = ""
        if anchor:
            tps = _num(anchor["tps"])
            text, ok = _verdict(
                sdi.rps / anchor["tps"] if anchor["tps"] else None, ANCHOR_GOAL, sdi_ok
            )
            anchor_ratio = text
            checks.append(ok)
        if rt.kind == "tile":
            tile += _tile_contents(by, rt.id)
        if not checks:
            verdict = "no peer measured"
        else:
            verdict = "met" if all(checks) else "**unmet**"
            met_all = met_all and verdict == "met"
        lines.append(
            f"| {rt.label} | {' | '.join(cells)} | {stock} | {peer} | {tile} | "
            f"{tps} | {anchor_ratio} | {verdict} |"
        )
    lines += _notes(types)
    flat = _memory(by, servers)
    lines += ["", *flat, "", f"All goals met: {'yes' if met_all else 'no'}.", ""]
    return "\n".join(lines)


def _notes(types: list[Any]) -> list[str]:
    """What some rows measure, so that they are read right."""
    ids = {t.id for t in types}
    notes = []
    if "b-deep" in ids:
        notes.append(
            "- *Deep page, same offset repeated*: sdi remembers, per immutable "
            "version, the row id where an offset seen before starts, so after the "
            "first request per worker this row measures that cache (an index range "
            "scan). *Deep page, random offsets* asks every request for a different "
            "offset (uniform, wrk Lua `request`): the cold deep page."
        )
    if "b-tile" in ids or "b-tile-all" in ids:
        notes.append(
            "- *Vector tile, all attributes* is the like-for-like comparison with "
            "tipg: sdi is asked `?properties=*`, tipg's tile always carries every "
            "attribute. The default tile row compares sdi's default tile (feature "
            "id and title attribute only, about half the bytes) with tipg's full "
            "one, which flatters sdi. pygeoapi is not measured for the "
            "all-attributes tile (skipped: it times out on the default tile)."
        )
    return ["", "Notes:", "", *notes] if notes else []


def _tile_contents(by: dict[tuple[str, str], Result], rid: str) -> str:
    """A warning when sdi's tile and tipg's do not carry the same attributes."""
    sdi, tipg = by.get(("sdi", rid)), by.get(("tipg", rid))
    if sdi is None or tipg is None:
        return ""
    mine = {k for layer in sdi.extra.get("mvt", {}).values() for k in layer["keys"]}
    theirs = {k for layer in tipg.extra.get("mvt", {}).values() for k in layer["keys"]}
    theirs.discard("id")  # tipg repeats the feature id as an attribute
    if not mine or not theirs or mine == theirs:
        return ""
    return (
        f" (not the same content: sdi's tile carries {', '.join(sorted(mine))}; "
        f"tipg's {', '.join(sorted(theirs))})"
    )


def _memory(by: dict[tuple[str, str], Result], servers: list[str]) -> list[str]:
    ids = ("b-limit10", "b-limit1000", "b-limit10000")
    if not any((s, i) in by for s in servers for i in ids):
        return []
    out = [
        "## Memory as the page grows (buildings, peak RSS of master + workers, MB)",
        "",
        "| server | limit=10 | limit=1000 | limit=10000 | 10000 / 10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for server in servers:
        peaks = [by.get((server, i)) for i in ids]
        values = [p.peak_mb if p is not None and p.peak_mb else None for p in peaks]
        ratio = f"{values[2] / values[0]:.2f}" if values[0] and values[2] else "–"
        if server == "sdi" and values[0] and values[2]:
            flat = values[2] / values[0] <= FLAT_GOAL
            ratio += f" ({'flat' if flat else '**not flat**'}: goal ≤ {FLAT_GOAL:g})"
        out.append(f"| {server} | {' | '.join(_num(v, 0) for v in values)} | {ratio} |")
    return out
