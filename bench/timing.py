"""Timing runs and what a benchmark case reports."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def timed[**P, T](
    fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> tuple[float, T]:
    """Wall-clock seconds ``fn(*args, **kwargs)`` took, and its result."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


@dataclass
class Measurement:
    """Repeated runs of one case: what was measured, on what, how long."""

    suite: str
    case: str  # short id, e.g. "sdi-new"
    label: str  # what the table shows
    dataset: str  # e.g. "buildings.zip (ESRI Shapefile)"
    features: int
    runs: list[float] = field(default_factory=list)  # seconds, in run order
    baseline: str | None = None  # case this one is compared with (same dataset)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> float:
        """The fastest run (the least disturbed by the rest of the machine)."""
        return min(self.runs)

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.runs)

    @property
    def features_per_s(self) -> float:
        """Throughput of the best run."""
        return self.features / self.best if self.best > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        """Plain data for the results file."""
        data = asdict(self)
        data.update(
            best_s=round(self.best, 3),
            median_s=round(self.median, 3),
            features_per_s=round(self.features_per_s, 1),
        )
        return data
