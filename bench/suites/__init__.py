"""The benchmark suites, by name (``python -m bench --only NAME``).

A suite is a module with ``NAME``, ``DESCRIPTION`` and
``run(ctx: BenchContext) -> list[Measurement]``; add it to :data:`SUITES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.context import BenchContext
from bench.suites import ingest, rasters, serving
from bench.timing import Measurement


@dataclass(frozen=True)
class Suite:
    """A named benchmark."""

    name: str
    description: str
    run: Callable[[BenchContext], list[Measurement]]
    table: bool = True  # False: the suite prints its own report


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(ingest.NAME, ingest.DESCRIPTION, ingest.run),
        Suite(rasters.NAME, rasters.DESCRIPTION, rasters.run),
        Suite(serving.NAME, serving.DESCRIPTION, serving.run, table=False),
    )
}
