"""pygeoapi's serialisers, made safe for the formats they write.

- **JSON**: ``pygeoapi.util.to_json`` replaces ``<`` and ``>`` with ``&lt;``
  and ``&gt;`` (so that its templates may embed the JSON in a ``<script>``),
  which changes the data: a title ``A & <B>`` came out as ``A & &lt;B&gt;``.
  :func:`to_json` writes them (and ``&``) as JSON escapes (``\\u003c``): the
  parsed values are the stored ones, and the text is still safe inside a
  ``<script>`` element. HTML pages escape with Jinja's autoescape.
- **CSV** (``f=csv`` of items and records): text cells that a spreadsheet
  would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return, OWASP's list) get a leading ``'``; numbers are untouched.
  The catalogue (records) is not offered as CSV: pygeoapi 0.24's records
  path fails on it (``query_crs_uri`` unbound: a 500), so ``f=csv`` there is
  a 400 naming the formats, and no CSV link is advertised.

:func:`install` puts both in place of pygeoapi's (idempotent).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pygeoapi.util
from pygeoapi.formatter.csv_ import CSVFormatter
from pygeoapi.plugin import PLUGINS

__all__ = [
    "FORMULA_PREFIXES",
    "SafeCsvFormatter",
    "dataset_formatters",
    "install",
    "neutralise",
    "to_json",
]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ORIGINAL_TO_JSON = pygeoapi.util.to_json
_ORIGINAL_FORMATTERS = pygeoapi.util.get_dataset_formatters
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def to_json(dict_: Any, pretty: bool = False) -> str:
    """``dict_`` as JSON text, like pygeoapi's ``to_json`` but lossless."""
    text = json.dumps(
        dict_,
        default=pygeoapi.util.json_serial,
        indent=4 if pretty else None,
        separators=(",", ":"),
    )
    return text.translate(_HTML_SAFE)


def neutralise(value: Any) -> Any:
    """``value`` with a ``'`` before it if it is text that looks like a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvFormatter(CSVFormatter):  # type: ignore[misc]
    """pygeoapi's CSV formatter, with formula-like text cells neutralised."""

    def write(self, options: dict[str, Any] | None = None, data: Any = None) -> Any:
        """CSV of ``data``; attribute names and text values neutralised."""
        if isinstance(data, dict) and isinstance(data.get("features"), list):
            data = {
                **data,
                "features": [_safe_feature(f) for f in data["features"]],
            }
        return super().write(options or {}, data)


def _safe_feature(feature: Any) -> Any:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        return feature
    properties = {
        neutralise(k): neutralise(v) for k, v in feature["properties"].items()
    }
    return {**feature, "properties": properties}


def dataset_formatters(dataset: dict[str, Any]) -> dict[str, Any]:
    """pygeoapi's formatters of ``dataset``, without CSV for record collections."""
    found: dict[str, Any] = _ORIGINAL_FORMATTERS(dataset)
    provider = pygeoapi.util.get_provider_default(dataset["providers"])
    if provider.get("type") == "record":
        found.pop("CSV", None)
    return found


def install() -> None:
    """Use :func:`to_json` and :class:`SafeCsvFormatter` wherever pygeoapi would."""
    PLUGINS["formatter"]["CSV"] = f"{__name__}.{SafeCsvFormatter.__name__}"
    # pygeoapi's modules (and sdi's) import these by name: rebind each.
    replaced = {
        "to_json": (_ORIGINAL_TO_JSON, to_json),
        "get_dataset_formatters": (_ORIGINAL_FORMATTERS, dataset_formatters),
    }
    for name, module in list(sys.modules.items()):
        if not name.startswith(("pygeoapi", "sdi.")) or module is None:
            continue
        for attribute, (original, ours) in replaced.items():
            if getattr(module, attribute, None) is original:
                setattr(module, attribute, ours)
