"""Show measurements as a rich table and keep them as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.timing import Measurement


def ratio(m: Measurement, by_case: dict[tuple[str, str], Measurement]) -> float | None:
    """Best time of ``m`` divided by its baseline's (same dataset), if any."""
    if m.baseline is None:
        return None
    base = by_case.get((m.dataset, m.baseline))
    return m.best / base.best if base and base.best > 0 else None


def table(title: str, measurements: list[Measurement]) -> Table:
    """One row per case: sizes, best and median time, throughput, ratio."""
    by_case = {(m.dataset, m.case): m for m in measurements}
    out = Table(
        title=title,
        title_justify="left",
        caption="× baseline: best time divided by the baseline's best time "
        "(same data); below 1 is faster",
        caption_justify="left",
    )
    for name, justify in (
        ("data", "left"),
        ("case", "left"),
        ("features", "right"),
        ("runs", "right"),
        ("best s", "right"),
        ("median s", "right"),
        ("features/s", "right"),
        ("× baseline", "right"),
    ):
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for m in measurements:
        r = ratio(m, by_case)
        out.add_row(
            m.dataset,
            m.label,
            f"{m.features:,}",
            str(len(m.runs)),
            f"{m.best:.2f}",
            f"{m.median:.2f}",
            f"{m.features_per_s:,.0f}",
            f"{r:.2f}" if r is not None else "—",
        )
    return out


def save(
    results_dir: Path,
    suite: str,
    measurements: list[Measurement],
    meta: dict[str, Any],
) -> Path:
    """Write ``<suite>-<UTC time>.json`` into ``results_dir``; returns its path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    by_case = {(m.dataset, m.case): m for m in measurements}
    doc = {
        "suite": suite,
        "finished_at": now.isoformat(timespec="seconds"),
        "meta": meta,
        "measurements": [
            m.to_json() | {"ratio_to_baseline": _round(ratio(m, by_case))}
            for m in measurements
        ],
    }
    path = results_dir / f"{suite}-{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def show(console: Console, title: str, measurements: list[Measurement]) -> None:
    """Print the table."""
    console.print(table(title, measurements))
