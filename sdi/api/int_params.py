"""Integer query parameters bound into SQL: whole numbers within ``bigint``.

PostgreSQL refuses a bound value outside ``bigint`` with "bigint out of
range", which the feature handlers would report as a value that does not fit
an attribute. Parameters such as ``offset``, ``limit`` and ``after`` are
checked here instead, before any SQL, with a message that names the
parameter and the range it accepts.
"""

from __future__ import annotations

import re

__all__ = ["BIGINT_MAX", "IntParamError", "int_param"]

#: The largest value of PostgreSQL's ``bigint`` (row ids, OFFSET, LIMIT).
BIGINT_MAX = 2**63 - 1

# ASCII digits only: Python's int() also takes "1_000" and other scripts' digits.
_WHOLE = re.compile(r"[+-]?[0-9]+")
#: Longer than any bigint with leading zeros a client might plausibly send;
#: longer text is out of range without converting it.
_MAX_DIGITS = 40


class IntParamError(ValueError):
    """An integer parameter that is not a whole number in its range."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def int_param(
    raw: object, name: str, *, minimum: int = 0, maximum: int = BIGINT_MAX
) -> int:
    """``raw`` as an integer from ``minimum`` to ``maximum``, or IntParamError."""
    text = str(raw).strip()
    bounds = f"{minimum} to {maximum}"
    if not _WHOLE.fullmatch(text):
        raise IntParamError(
            f"{name} must be a whole number from {bounds}, not {text[:40]!r}."
        )
    digits = text.lstrip("+-").lstrip("0")
    value = int(text) if len(digits) <= _MAX_DIGITS else None
    if value is None or not minimum <= value <= maximum:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise IntParamError(f"{name} must be from {bounds}; {shown} is out of range.")
    return value
