"""The catalogue's record provider: OGC API - Records over records held in memory.

``sdi.publish.catalog`` builds one record (a GeoJSON Feature) per published
layer and puts the list in the provider definition's ``data``; pygeoapi
creates a :class:`CatalogProvider` per request, which searches that list.
Nothing here touches the database: the records are part of the configuration
the API rebuilds whenever the publication generation moves, and there are
hundreds of them at most.

Queries (``/collections/catalog/items``):

- ``q``: comma-separated alternatives (any may match), each a list of
  whitespace-separated terms that must all occur, case-insensitively, in the
  title, description or keywords, English or Chinese (substrings, so a
  Chinese term needs no word breaks);
- ``bbox``: intersects the record's extent (CRS84);
- ``datetime``: an instant or interval (``..`` open) against ``updated``;
- a queryable by name (``agency=landsd``, ``kind=vector``): equal, ignoring
  case, or for a list (``keywords``) one element equal;
- ``sortby`` on any queryable; ``filter`` (CQL2) evaluated in Python by
  pygeofilter's native evaluator.

Invalid input is pygeoapi's ``ProviderInvalidQueryError`` (400).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

import shapely.geometry
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeofilter import ast
from pygeofilter.backends.native.evaluate import NativeEvaluator

__all__ = ["QUERYABLES", "TEXT_PROPERTIES", "CatalogProvider"]

LOGGER = logging.getLogger(__name__)

#: The catalogue's queryables: record property -> JSON Schema.
QUERYABLES: dict[str, dict[str, Any]] = {
    "title": {"type": "string"},
    "title_zh": {"type": "string"},
    "description": {"type": "string"},
    "description_zh": {"type": "string"},
    "keywords": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string"},
    "kind": {"type": "string"},
    "agency": {"type": "string"},
    "licence": {"type": "string"},
    "theme": {"type": "string"},
    "visibility": {"type": "string"},
    "version": {"type": "integer"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
}
#: What ``q`` searches.
TEXT_PROPERTIES = ("title", "title_zh", "description", "description_zh", "keywords")
_DATETIMES = frozenset(
    name for name, spec in QUERYABLES.items() if spec.get("format") == "date-time"
)
_EMPTY = shapely.geometry.GeometryCollection()


def _invalid(message: str) -> ProviderInvalidQueryError:
    error: ProviderInvalidQueryError = ProviderInvalidQueryError(user_msg=message)
    return error


def _parse_time(text: str, *, end: bool = False) -> dt.datetime:
    """An RFC 3339 date or date-time (UTC if no offset); a date spans its day."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when = dt.time.max if end else dt.time.min
            return dt.datetime.combine(day, when, dt.UTC)
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise _invalid(f"Invalid datetime {text!r}: use RFC 3339.") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _time_test(datetime_: str) -> Callable[[dt.datetime | None], bool]:
    """Whether a record's ``updated`` falls in ``datetime_`` (instant or interval)."""
    text = datetime_.strip()
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start = None if start_text in ("", "..") else _parse_time(start_text)
        end = None if end_text in ("", "..") else _parse_time(end_text, end=True)
        if start is not None and end is not None and start > end:
            raise _invalid("The datetime interval ends before it starts.")
    else:
        start, end = _parse_time(text), _parse_time(text, end=True)
        if len(text) > 10:  # an instant: to the second
            start = start.replace(microsecond=0)
            end = start + dt.timedelta(seconds=1) - dt.timedelta(microseconds=1)

    def test(value: dt.datetime | None) -> bool:
        if value is None:
            return False
        return (start is None or value >= start) and (end is None or value <= end)

    return test


def _record_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record_bbox(record: dict[str, Any]) -> list[float] | None:
    """The record's extent ``[minx, miny, maxx, maxy]`` in CRS84, if it has one."""
    extent = record.get("properties", {}).get("extent") or {}
    boxes = (extent.get("spatial") or {}).get("bbox") or []
    if boxes and isinstance(boxes[0], list | tuple):
        boxes = boxes[0]
    if len(boxes) == 4:
        return [float(v) for v in boxes]
    geometry = record.get("geometry")
    if geometry:
        return list(shapely.geometry.shape(geometry).bounds)
    return None


def _bbox_test(bbox: list[float]) -> Callable[[list[float] | None], bool]:
    if len(bbox) == 6:
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    if len(bbox) != 4:
        raise _invalid("bbox needs 4 (or 6) numbers.")
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if miny > maxy:
        raise _invalid("bbox: miny is greater than maxy.")

    def test(box: list[float] | None) -> bool:
        if box is None:
            return False
        if box[1] > maxy or box[3] < miny:
            return False
        if minx <= maxx:
            return box[0] <= maxx and box[2] >= minx
        return box[2] >= minx or box[0] <= maxx  # crosses the antimeridian

    return test


def _text(record: dict[str, Any]) -> str:
    properties = record.get("properties", {})
    parts: list[str] = []
    for name in TEXT_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value:
            parts.append(str(value))
    return "\n".join(parts).casefold()


def _q_test(q: str) -> Callable[[dict[str, Any]], bool]:
    alternatives = [a.casefold().split() for a in q.split(",")]
    alternatives = [terms for terms in alternatives if terms]
    if not alternatives:
        return lambda record: True

    def test(record: dict[str, Any]) -> bool:
        text = _text(record)
        return any(all(term in text for term in terms) for terms in alternatives)

    return test


def _equal(value: Any, wanted: str) -> bool:
    if isinstance(value, list):
        return any(_equal(v, wanted) for v in value)
    if value is None:
        return False
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return str(value).casefold() == wanted.casefold()


def _nodes(node: Any) -> Iterable[Any]:
    """``node`` and every node below it in a pygeofilter AST."""
    yield node
    if isinstance(node, ast.Node):
        subs = node.get_sub_nodes()
    elif isinstance(node, list | tuple):
        subs = list(node)
    else:
        subs = []
    for sub in subs or []:
        yield from _nodes(sub)


def _filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """What CQL2 sees of a record: its queryables (dates parsed) and geometry."""
    properties = record.get("properties", {})
    view: dict[str, Any] = {name: properties.get(name) for name in QUERYABLES}
    for name in _DATETIMES:
        view[name] = _record_time(view[name])
    geometry = record.get("geometry")
    view["geometry"] = shapely.geometry.shape(geometry) if geometry else _EMPTY
    return view


def _filter_test(filterq: Any) -> Callable[[dict[str, Any]], bool]:
    nodes = list(_nodes(filterq))
    functions = sorted({n.name for n in nodes if isinstance(n, ast.Function)})
    if functions:
        raise _invalid(
            f"Functions are not supported in catalogue filters: {', '.join(functions)}."
        )
    names = {n.name for n in nodes if isinstance(n, ast.Attribute)}
    unknown = sorted(names - set(QUERYABLES) - {"geometry"})
    if unknown:
        raise _invalid(
            f"Unknown queryable(s) in the filter: {', '.join(unknown)} "
            "(see /collections/catalog/queryables)."
        )
    try:
        evaluate = NativeEvaluator(use_getattr=False).evaluate(filterq)
    except Exception as exc:  # an AST node the native evaluator cannot handle
        raise _invalid(f"This filter is not supported on the catalogue: {exc}") from exc

    def test(record: dict[str, Any]) -> bool:
        try:
            return bool(evaluate(_filter_view(record)))
        except Exception as exc:  # comparing a date with text, a list with a number
            raise _invalid(f"The filter cannot be applied: {exc}") from exc

    return test


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    def key(record: dict[str, Any]) -> tuple[int, Any]:
        value = record.get("properties", {}).get(name)
        if value is None:
            return (1, "")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if isinstance(value, str):
            return (0, value.casefold())
        return (0, value)

    return key


class CatalogProvider(BaseProvider):  # type: ignore[misc]
    """Records (GeoJSON Features) listed in the provider's ``data.records``."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        records = self.data.get("records") if isinstance(self.data, dict) else None
        if not isinstance(records, list):
            raise ProviderConnectionError(
                "The catalogue provider's data must be {records: [...]}."
            )
        self._records: list[dict[str, Any]] = records
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, Any]]:
        """The queryables (a fresh copy: pygeoapi edits what it is given)."""
        return copy.deepcopy(QUERYABLES)

    def get_domains(
        self, properties: list[str] | None = None, current: bool = False
    ) -> tuple[dict[str, list[Any]], bool]:
        """Values of the short text queryables (``kind``, ``agency``, ...)."""
        names = properties or ["type", "kind", "agency", "licence", "theme"]
        domains: dict[str, list[Any]] = {}
        for name in names:
            values: set[Any] = set()
            for record in self._records:
                value = record.get("properties", {}).get(name)
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str | int | float) and v != "":
                        values.add(v)
            if values:
                domains[name] = sorted(values, key=str)
        return domains, True

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A page of the matching records as a GeoJSON FeatureCollection."""
        if offset < 0 or limit < 0:
            raise _invalid("offset and limit must not be negative.")
        records = list(self._records)
        if q:
            matches_q = _q_test(q)
            records = [r for r in records if matches_q(r)]
        if bbox:
            inside = _bbox_test(list(bbox))
            records = [r for r in records if inside(_record_bbox(r))]
        if datetime_:
            when = _time_test(datetime_)
            records = [
                r for r in records if when(_record_time(r["properties"].get("updated")))
            ]
        for name, wanted in properties or []:
            if name not in self.fields:
                raise _invalid(f"Unknown queryable {name!r}.")
            records = [
                r for r in records if _equal(r["properties"].get(name), str(wanted))
            ]
        if filterq is not None:
            matches = _filter_test(filterq)
            records = [r for r in records if matches(r)]
        for sort in reversed(sortby or []):
            name = sort.get("property", "")
            if name not in self.fields:
                raise _invalid(f"Cannot sort by {name!r}.")
            records.sort(key=_sort_key(name), reverse=sort.get("order") == "-")

        page = [] if resulttype == "hits" else records[offset : offset + limit]
        features = [self._output(r, select_properties, skip_geometry) for r in page]
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": len(records),
            "numberReturned": len(features),
        }

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """The record ``identifier`` (a layer's slug)."""
        for record in self._records:
            if str(record.get("id")) == str(identifier):
                return self._output(record)
        raise ProviderItemNotFoundError(user_msg=f"No record {identifier!r}.")

    @staticmethod
    def _output(
        record: dict[str, Any],
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
    ) -> dict[str, Any]:
        # A copy: pygeoapi adds links to what it is given, and the record
        # belongs to the configuration shared by every request.
        out = copy.deepcopy(record)
        if select_properties:
            out["properties"] = {
                k: v for k, v in out["properties"].items() if k in select_properties
            }
        if skip_geometry:
            out["geometry"] = None
        return out

    def __repr__(self) -> str:
        return f"<CatalogProvider> {len(self._records)} records"
