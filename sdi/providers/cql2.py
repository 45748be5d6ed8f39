"""OGC API - Features Part 3 (CQL2) filters as SQL over a layer table.

:func:`parse_filter` turns ``filter`` text (cql2-text or cql2-json) into a
pygeofilter AST; :func:`filter_sql` turns an AST into one boolean
``psycopg.sql`` expression over the layer table aliased ``t``, to AND into the
WHERE clause. Request values never enter the SQL text: each literal is bound
as a named parameter (``cql_<n>``) with an explicit cast, and property names
become ``sql.Identifier``\\ s only after they are found among the layer's
fields. Types come from the fields' JSON Schema: a literal is converted to the
type of the property it is compared with (``"OPENED" > '2010-01-01'``
compares dates) or the filter is refused with a :class:`Cql2Error` (HTTP 400)
that says why, so PostgreSQL never sees a comparison it cannot do.

Geometry literals are in ``filter_srid`` (CRS84 by default) and bound as
GeoJSON text, then ``ST_Transform``-ed to the storage SRID when it differs.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pygeofilter.ast as pgf_ast
import pygeofilter.values as pgf_values
import pyproj
import pyproj.exceptions
from lark import Lark, v_args
from lark.exceptions import UnexpectedInput, VisitError
from psycopg import sql
from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP
from pygeofilter.parsers.cql2_json import parse as _parse_json
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from pygeofilter.parsers.cql2_text import parse as _parse_text
from pygeofilter.parsers.cql2_text import parser as cql2_text_parser
from pygeofilter.parsers.cql2_text.parser import CQLTransformer

from sdi.errors import BadInputError
from sdi.providers.crs import crs_srid, northing_first

__all__ = ["Cql2Error", "filter_sql", "parse_filter"]

LOGGER = logging.getLogger(__name__)

GEOMETRY_NAMES: tuple[str, ...] = ("geometry", "geom", "_sdi_geom")
_GEOM_COLUMN = "_sdi_geom"
_QUERYABLES = "/collections/{collectionId}/queryables"

_NUMERIC = frozenset({"integer", "number"})
_TEMPORAL = frozenset({"date", "datetime"})
_INT64 = 2**63
_RELATE_PATTERN = re.compile(r"^[012TF*]{9}$")


class Cql2Error(BadInputError, ValueError):
    """A filter that cannot be run; the message tells the client what to fix (400)."""


# -- parsing -----------------------------------------------------------------
def parse_filter(text: str, lang: str | None = None) -> Any:
    """The pygeofilter AST of a ``filter`` parameter.

    ``lang`` is the ``filter-lang`` parameter: None or ``cql2-text``, or
    ``cql2-json`` (``text`` is then the JSON document). Parses are cached, so
    the AST returned must be treated as immutable. Raises :class:`Cql2Error`
    for another language or a malformed filter.
    """
    if lang not in (None, "cql2-text", "cql2-json"):
        raise Cql2Error(f"filter-lang must be cql2-text or cql2-json, not {lang!r}.")
    return _parse_cached(text, lang or "cql2-text")


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str, lang: str) -> Any:
    if not text.strip():
        raise Cql2Error("The filter is empty; give a CQL2 expression or leave it out.")
    if lang == "cql2-json":
        return _parse_cql2_json(text)
    return _parse_cql2_text(text)


# pygeofilter 0.4's cql2-text grammar departs from the standard in ways
# clients hit at once; its grammar is read and these rules patched (the stock
# parser is used should a later version no longer have them).
_GRAMMAR_PATCHES = (
    # NOT of any parenthesised condition, not only of one predicate.
    ('"NOT"i "(" predicate ")"', '"NOT"i "(" condition ")"'),
    # One-letter property names.
    ("/[a-zA-Z][a-zA-Z_:0-9.]+/", "/[a-zA-Z][a-zA-Z_:0-9.]*/"),
    # Temporal operators are functions, T_AFTER(a, b), not infix a T_AFTER b.
    (
        "?temporal_predicate: expression _binary_temporal_predicate_func "
        "expression -> binary_temporal_predicate",
        '?temporal_predicate: _binary_temporal_predicate_func "(" expression "," '
        'expression ")" -> sdi_temporal_predicate',
    ),
    # T_DISJOINT is missing.
    ('"T_BEFORE"i\n', '"T_BEFORE"i\n                        | "T_DISJOINT"i\n'),
    # Interval ends may be dates, timestamps or '..' (open).
    (
        '?interval: "INTERVAL" "("  "\'" DATETIME "\'" "," "\'" DATETIME "\'" ")"',
        'interval: "INTERVAL"i "(" interval_bound "," interval_bound ")"\n'
        '?interval_bound: "\'" DATETIME "\'" | "\'" DATE "\'" '
        '| "\'" ".." "\'" -> sdi_open_bound',
    ),
)


@v_args(meta=False, inline=True)
class _Transformer(CQLTransformer):  # type: ignore[misc]
    def sdi_temporal_predicate(self, op: Any, lhs: Any, rhs: Any) -> Any:
        name = str(op).lower()
        if name == "t_disjoint":
            return pgf_ast.TimeDisjoint(lhs, rhs)
        return TEMPORAL_PREDICATES_MAP[name](lhs, rhs)

    def sdi_open_bound(self) -> None:
        return None

    # pygeofilter's versions of these two print() to stdout.
    def wkt__geometry_with_srid(self, srid: Any, geometry: Any) -> Any:
        geometry["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"},
        }
        return geometry

    def wkt__multipoint_2(self, *coordinates: Any) -> Any:
        return {"type": "MultiPoint", "coordinates": coordinates}


@functools.cache
def _text_parser() -> Callable[[str], Any]:
    path = Path(cql2_text_parser.__file__).with_name("grammar.lark")
    try:
        grammar = path.read_text(encoding="utf-8")
        for old, new in _GRAMMAR_PATCHES:
            if old not in grammar:
                raise ValueError(f"rule not found: {old}")
            grammar = grammar.replace(old, new)
        lark = Lark(
            grammar,
            parser="lalr",
            maybe_placeholders=False,
            transformer=_Transformer(),
            import_paths=[str(path.parent.parent)],
            source_path=str(path),
        )
    except Exception:
        LOGGER.exception("cannot patch pygeofilter's CQL2 grammar; using it as is")
        return _parse_text  # type: ignore[no-any-return]
    return lark.parse


def _parse_cql2_text(text: str) -> Any:
    try:
        return _text_parser()(text)
    except UnexpectedInput as exc:
        raise Cql2Error(_text_hint(text, exc)) from exc
    except VisitError as exc:
        raise Cql2Error(
            f"The filter is not valid CQL2 text: {exc.orig_exc}. "
            "Dates are written DATE('2020-01-31'), timestamps "
            "TIMESTAMP('2020-01-31T08:00:00Z')."
        ) from exc
    except RecursionError as exc:
        raise Cql2Error("The filter is nested too deeply.") from exc
    except Exception as exc:  # the parser's transformer can raise anything
        raise Cql2Error(f"The filter is not valid CQL2 text: {exc}") from exc


_TOKEN_NAMES = {
    "$END": "the end of the filter",
    "wkt__SIGNED_NUMBER": "a number",
    "wkt__NUMBER": "a number",
    "SIGNED_NUMBER": "a number",
    "INT": "an integer",
    "FLOAT": "a number",
    "EQUAL": "=",
    "MORETHAN": ">",
    "LESSTHAN": "<",
    "MINUS": "-",
    "PLUS": "+",
    "STAR": "*",
    "SLASH": "/",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "QUOTE": "'",
    "SEMICOLON": ";",
    "DOUBLE_QUOTED": '"property"',
    "SINGLE_QUOTED": "'string'",
    "DATE": "a date (2020-01-31)",
    "DATETIME": "a timestamp (2020-01-31T08:00:00Z)",
    "BOOLEAN": "TRUE/FALSE",
}


def _text_hint(text: str, exc: UnexpectedInput) -> str:
    column = getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
    names = sorted(
        {_TOKEN_NAMES.get(str(e), str(e)) for e in expected if "__ANON" not in str(e)}
    )
    if token is not None and getattr(token, "type", "") == "$END":
        what = "the filter ends too early"
    elif token is not None:
        what = f"unexpected {str(token)!r}"
    else:
        char = getattr(exc, "char", "")
        what = f"unexpected {char!r}" if char else "unexpected input"
    at_end = token is not None and getattr(token, "type", "") == "$END"
    known = isinstance(column, int) and column > 0 and not at_end
    where = f" at character {column}" if known else ""
    hint = f"The filter is not valid CQL2 text{where}: {what}."
    if names:
        shown = [n if n[:1].isalnum() else f"`{n}`" for n in names[:14]]
        hint += " Expected one of: " + ", ".join(shown) + "."
    context = exc.get_context(text, span=30).rstrip()
    if context:
        hint += "\n" + context
    return (
        hint + '\nQuote property names with double quotes ("NAME_EN", needed for'
        " one-letter names and names with spaces, % or Chinese), strings with"
        " single quotes ('Central')."
    )


def _parse_cql2_json(text: str) -> Any:
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise Cql2Error("The filter is nested too deeply.") from exc
    except ValueError as exc:
        raise Cql2Error(f"The cql2-json filter is not valid JSON: {exc}.") from exc
    try:
        return _parse_json(_normalise_json(document))
    except RecursionError as exc:
        raise Cql2Error("The filter is nested too deeply.") from exc
    except Exception as exc:  # walk_cql_json raises bare ValueError, TypeError...
        raise Cql2Error(
            f"The filter is not valid CQL2 JSON ({type(exc).__name__}: {exc}). "
            'Expressions look like {"op": "=", "args": [{"property": "NAME_EN"}, '
            '"Central"]}.'
        ) from exc


def _normalise_json(node: Any) -> Any:
    """Fix up the standard CQL2 JSON forms pygeofilter 0.4 misreads.

    ``{"bbox": [minx, miny, maxx, maxy]}`` becomes a polygon (pygeofilter
    builds its Envelope with the numbers in the wrong places) and the final
    standard's three-argument ``between`` the two-argument draft form;
    ``t_disjoint`` (missing) becomes ``t_before`` or ``t_after``.
    """
    if isinstance(node, list):
        return [_normalise_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"}:
        return _bbox_polygon(node["bbox"])
    result = {key: _normalise_json(value) for key, value in node.items()}
    args = result.get("args")
    if result.get("op") == "t_disjoint":  # unknown to pygeofilter's JSON parser
        return {
            "op": "or",
            "args": [{"op": "t_before", "args": args}, {"op": "t_after", "args": args}],
        }
    if result.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        result["args"] = [args[0], [args[1], args[2]]]
    return result


def _bbox_polygon(values: Any) -> dict[str, Any]:
    if (
        not isinstance(values, list)
        or len(values) not in (4, 6)
        or not all(_is_number(v) for v in values)
    ):
        raise Cql2Error(
            "A bbox literal takes 4 numbers (minx, miny, maxx, maxy) or 6 (with z)."
        )
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    return _box(*values)


def _box(x1: float, y1: float, x2: float, y2: float) -> dict[str, Any]:
    minx, maxx = sorted((float(x1), float(x2)))
    miny, maxy = sorted((float(y1), float(y2)))
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


# -- compiling ---------------------------------------------------------------
def filter_sql(
    node: Any,
    *,
    fields: Mapping[str, Mapping[str, Any]],
    srid: int,
    params: dict[str, Any],
    filter_srid: int = 4326,
    flip: bool = False,
    geometry_names: Collection[str] = GEOMETRY_NAMES,
) -> sql.Composable:
    """A boolean SQL expression over the table alias ``t`` for a parsed filter.

    ``fields`` are the layer's queryable attributes and their JSON Schema
    types; ``srid`` the storage SRID of ``t._sdi_geom``; ``params`` receives
    the bound values (names ``cql_<n>``, never overwriting a key already
    there), so run the statement with it as its parameter mapping.
    Geometry literals are in ``filter_srid``; ``flip`` says their axes are
    y, x (latitude, longitude or northing, easting, as for ``filter-crs``
    EPSG:4326 or EPSG:2326). Properties named in ``geometry_names`` mean the
    feature geometry. Raises :class:`Cql2Error` for anything the layer cannot
    answer (unknown properties, mismatched types, unsupported operators).
    """
    compiler = _Compiler(
        fields=fields,
        srid=srid,
        params=params,
        filter_srid=filter_srid,
        flip=flip,
        geometry_names=frozenset(geometry_names),
    )
    try:
        return compiler.condition(node)
    except RecursionError as exc:
        raise Cql2Error("The filter is nested too deeply.") from exc


@dataclass(frozen=True)
class _Expr:
    """A non-literal scalar: a column, a function or arithmetic over columns."""

    sql: sql.Composable
    kind: str
    name: str


@dataclass(frozen=True)
class _Lit:
    """A literal value not yet bound: its type depends on what it meets."""

    value: Any

    @property
    def kind(self) -> str:
        return _literal_kind(self.value)


_Scalar = _Expr | _Lit


class _Inf:
    """An open end of an interval ('..'): before (-1) or after (+1) everything."""

    def __init__(self, sign: int) -> None:
        self.sign = sign


_NEG_INF = _Inf(-1)
_POS_INF = _Inf(1)
_Bound = sql.Composable | _Inf

_TRUE = sql.SQL("TRUE")
_FALSE = sql.SQL("FALSE")


def _literal_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, pgf_values.Geometry | pgf_values.Envelope):
        return "geometry"
    if isinstance(value, pgf_values.Interval | list | tuple):
        return "interval"
    if isinstance(value, dt.timedelta):
        return "duration"
    return type(value).__name__


def _field_kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind in ("integer", "number", "boolean"):
        return str(kind)
    if kind == "string":
        fmt = schema.get("format")
        return {"date": "date", "date-time": "datetime", "time": "time"}.get(
            str(fmt), "string"
        )
    return "other"


_KIND_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "date": "a date",
    "datetime": "a timestamp",
    "time": "a time",
    "geometry": "a geometry",
    "interval": "an interval",
    "duration": "a duration",
    "other": "a value",
}

_EXAMPLES = {
    "string": "'Central'",
    "integer": "12",
    "number": "3.5",
    "boolean": "TRUE",
    "date": "DATE('2020-01-31')",
    "datetime": "TIMESTAMP('2020-01-31T08:00:00Z')",
    "time": "'08:30:00'",
}


def _describe(kind: str) -> str:
    return _KIND_NAMES.get(kind, f"a {kind}")


def _compatible(a: str, b: str) -> bool:
    return a == b or {a, b} <= _NUMERIC or {a, b} <= _TEMPORAL


_COMPARISONS: dict[type, str] = {
    pgf_ast.Equal: "=",
    pgf_ast.NotEqual: "<>",
    pgf_ast.LessThan: "<",
    pgf_ast.LessEqual: "<=",
    pgf_ast.GreaterThan: ">",
    pgf_ast.GreaterEqual: ">=",
}

_SPATIAL: dict[type, str] = {
    pgf_ast.GeometryIntersects: "ST_Intersects",
    pgf_ast.GeometryDisjoint: "ST_Disjoint",
    pgf_ast.GeometryContains: "ST_Contains",
    pgf_ast.GeometryWithin: "ST_Within",
    pgf_ast.GeometryTouches: "ST_Touches",
    pgf_ast.GeometryCrosses: "ST_Crosses",
    pgf_ast.GeometryOverlaps: "ST_Overlaps",
    pgf_ast.GeometryEquals: "ST_Equals",
}

_ARITHMETIC: dict[type, str] = {
    pgf_ast.Add: "+",
    pgf_ast.Sub: "-",
    pgf_ast.Mul: "*",
    pgf_ast.Div: "/",
}

_OPERATOR_NAMES: dict[type, str] = {
    **{cls: op for cls, op in _COMPARISONS.items()},
    pgf_ast.Between: "BETWEEN",
    pgf_ast.Like: "LIKE",
    pgf_ast.In: "IN",
}

# A temporal operand is an interval [start, end]; an instant is [t, t].
_Interval = tuple[_Bound, _Bound]
_Term = tuple[_Bound, str, _Bound]
_Rule = list[list[_Term]]
# (lhs, rhs) -> the CQL2 definition as comparisons of their ends.
_TEMPORAL_RULES: dict[type, Callable[[_Interval, _Interval], _Rule]] = {}


def _rule(cls: type) -> Callable[[Any], Any]:
    def register(func: Any) -> Any:
        _TEMPORAL_RULES[cls] = func
        return func

    return register


# Each rule returns a disjunction (outer list) of conjunctions (inner lists)
# of (bound, operator, bound) comparisons; see CQL2 section 6.4.7.
@_rule(pgf_ast.TimeAfter)
def _t_after(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">", b[1])]]


@_rule(pgf_ast.TimeBefore)
def _t_before(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[1], "<", b[0])]]


@_rule(pgf_ast.TimeBegins)
def _t_begins(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "=", b[0]), (a[1], "<", b[1])]]


@_rule(pgf_ast.TimeBegunBy)
def _t_begunby(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "=", b[0]), (a[1], ">", b[1])]]


@_rule(pgf_ast.TimeContains)
def _t_contains(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "<", b[0]), (a[1], ">", b[1])]]


@_rule(pgf_ast.TimeDisjoint)
def _t_disjoint(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">", b[1])], [(a[1], "<", b[0])]]


@_rule(pgf_ast.TimeDuring)
def _t_during(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">", b[0]), (a[1], "<", b[1])]]


@_rule(pgf_ast.TimeEndedBy)
def _t_endedby(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "<", b[0]), (a[1], "=", b[1])]]


@_rule(pgf_ast.TimeEnds)
def _t_ends(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">", b[0]), (a[1], "=", b[1])]]


@_rule(pgf_ast.TimeEquals)
def _t_equals(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "=", b[0]), (a[1], "=", b[1])]]


@_rule(pgf_ast.TimeMeets)
def _t_meets(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[1], "=", b[0])]]


@_rule(pgf_ast.TimeMetBy)
def _t_metby(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "=", b[1])]]


# pygeofilter 0.4 parses both T_OVERLAPS and T_INTERSECTS as TimeOverlaps.
# A feature's time is an instant, which never T_OVERLAPS anything, so the
# operator is read as the one clients mean: T_INTERSECTS (inclusive).
@_rule(pgf_ast.TimeOverlaps)
def _t_intersects(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], "<=", b[1]), (a[1], ">=", b[0])]]


@_rule(pgf_ast.TimeOverlappedBy)
def _t_overlappedby(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">", b[0]), (a[0], "<", b[1]), (a[1], ">", b[1])]]


@_rule(pgf_ast.TimeBeforeOrDuring)
def _t_before_or_during(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[1], "<=", b[1])]]


@_rule(pgf_ast.TimeDuringOrAfter)
def _t_during_or_after(a: _Interval, b: _Interval) -> _Rule:
    return [[(a[0], ">=", b[0])]]


def _static(a: _Bound, op: str, b: _Bound) -> bool | None:
    """The value of a comparison involving an open end, or None if not static."""
    if not isinstance(a, _Inf) and not isinstance(b, _Inf):
        return None
    x = a.sign if isinstance(a, _Inf) else 0
    y = b.sign if isinstance(b, _Inf) else 0
    return {
        "=": x == y,
        "<": x < y,
        ">": x > y,
        "<=": x <= y,
        ">=": x >= y,
    }[op]


@dataclass
class _Compiler:
    fields: Mapping[str, Mapping[str, Any]]
    srid: int
    params: dict[str, Any]
    filter_srid: int
    flip: bool
    geometry_names: frozenset[str]
    _next: int = 0

    # -- conditions ----------------------------------------------------------
    def condition(self, node: Any) -> sql.Composable:
        if isinstance(node, pgf_ast.And | pgf_ast.Or):
            word = "AND" if isinstance(node, pgf_ast.And) else "OR"
            return sql.SQL("({} {} {})").format(
                self.condition(node.lhs), sql.SQL(word), self.condition(node.rhs)
            )
        if isinstance(node, pgf_ast.Not):
            return sql.SQL("(NOT {})").format(self.condition(node.sub_node))
        if isinstance(node, pgf_ast.Include):
            return _FALSE if node.not_ else _TRUE
        handler = self._HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if isinstance(node, pgf_ast.Comparison):
            return self._comparison(node)
        if isinstance(node, pgf_ast.SpatialComparisonPredicate):
            return self._spatial(node)
        if isinstance(node, pgf_ast.TemporalPredicate):
            return self._temporal(node)
        if isinstance(node, bool):
            return _TRUE if node else _FALSE
        if isinstance(node, pgf_ast.Attribute) and node.name in self.fields:
            column = self._attribute(node.name)
            if column.kind == "boolean":
                return column.sql
        if isinstance(node, pgf_ast.ArrayPredicate):
            raise Cql2Error(
                "Array operators (A_EQUALS, A_CONTAINS...) are not supported: "
                "the properties here are not arrays."
            )
        if isinstance(node, pgf_ast.SpatialDistancePredicate):
            raise Cql2Error("DWITHIN and BEYOND are not supported; use S_INTERSECTS.")
        if isinstance(node, pgf_ast.Exists):
            raise Cql2Error("EXISTS is not supported; use IS NULL / IS NOT NULL.")
        if isinstance(node, pgf_ast.Node | pgf_ast.Attribute):
            raise Cql2Error(
                f"{_show(node)} is not a condition; a filter is a condition such "
                "as \"NAME_EN\" = 'Central' or S_INTERSECTS(geometry, POINT(114.2 "
                "22.3)), combined with AND, OR and NOT."
            )
        raise Cql2Error(
            f"The value {node!r} is not a condition; a filter is a condition such "
            "as \"NAME_EN\" = 'Central'."
        )

    def _comparison(self, node: Any) -> sql.Composable:
        op = _COMPARISONS[type(node)]
        lhs, rhs = self.scalar(node.lhs), self.scalar(node.rhs)
        left, right = self._pair(lhs, rhs, op)
        return sql.SQL("({} {} {})").format(left, sql.SQL(op), right)

    def _pair(
        self, lhs: _Scalar, rhs: _Scalar, op: str
    ) -> tuple[sql.Composable, sql.Composable]:
        """Two operands made comparable (or a Cql2Error saying why not)."""
        if "geometry" in (lhs.kind, rhs.kind):
            raise Cql2Error(
                f"{op} does not compare geometries; use the spatial operators "
                "(S_EQUALS, S_INTERSECTS...)."
            )
        if isinstance(lhs, _Expr):
            return lhs.sql, self._against(rhs, lhs, op)
        if isinstance(rhs, _Expr):
            return self._against(lhs, rhs, op), rhs.sql
        # Two literals: a string takes the other's type.
        if lhs.kind == "string" and rhs.kind != "string":
            return self.bind(_coerce(lhs.value, rhs.kind, "the value")), self.bind(
                rhs.value
            )
        if rhs.kind == "string" and lhs.kind != "string":
            return self.bind(lhs.value), self.bind(
                _coerce(rhs.value, lhs.kind, "the value")
            )
        if not _compatible(lhs.kind, rhs.kind):
            raise Cql2Error(
                f"Cannot compare {_describe(lhs.kind)} with {_describe(rhs.kind)} "
                f"({lhs.value!r} {op} {rhs.value!r})."
            )
        return self.bind(lhs.value), self.bind(rhs.value)

    def _against(self, value: _Scalar, other: _Expr, op: str) -> sql.Composable:
        """``value`` as an operand of ``op`` with the expression ``other``."""
        if isinstance(value, _Lit):
            return self.bind(_coerce(value.value, other.kind, other.name))
        if other.kind == "other" or value.kind == "other":
            raise Cql2Error(
                f"{other.name} and {value.name} cannot be compared with {op}."
            )
        if not _compatible(value.kind, other.kind):
            raise Cql2Error(
                f"Cannot compare {other.name} ({_describe(other.kind)}) with "
                f"{value.name} ({_describe(value.kind)})."
            )
        return value.sql

    def _between(self, node: Any) -> sql.Composable:
        lhs = self.scalar(node.lhs)
        low = self.scalar(node.low)
        high = self.scalar(node.high)
        left, low_sql = self._pair(lhs, low, "BETWEEN")
        _, high_sql = self._pair(lhs, high, "BETWEEN")
        return sql.SQL("({} {}BETWEEN {} AND {})").format(
            left, sql.SQL("NOT " if node.not_ else ""), low_sql, high_sql
        )

    def _in(self, node: Any) -> sql.Composable:
        lhs = self.scalar(node.lhs)
        items = node.sub_nodes
        if not isinstance(items, list | tuple):
            raise Cql2Error("IN takes a list of values: \"NAME\" IN ('a', 'b').")
        if not items:
            return _TRUE if node.not_ else _FALSE
        left: sql.Composable | None = None
        options: list[sql.Composable] = []
        for item in items:
            pair = self._pair(lhs, self.scalar(item), "IN")
            left = pair[0]
            options.append(pair[1])
        return sql.SQL("({} {}IN ({}))").format(
            left, sql.SQL("NOT " if node.not_ else ""), sql.SQL(", ").join(options)
        )

    def _like(self, node: Any) -> sql.Composable:
        lhs = self._text(self.scalar(node.lhs), "LIKE")
        pattern_node = node.pattern
        if isinstance(pattern_node, dict):  # cql2-json: pygeofilter leaves it raw
            try:
                pattern_node = walk_cql_json(_normalise_json(pattern_node))
            except Cql2Error:
                raise
            except Exception as exc:
                raise Cql2Error(
                    f"The LIKE pattern is not valid CQL2 JSON: {exc}."
                ) from exc
        pattern = self.scalar(pattern_node)
        if isinstance(pattern, _Lit):
            if not isinstance(pattern.value, str):
                raise Cql2Error(
                    f"The LIKE pattern must be a string such as 'Central%', "
                    f"not {pattern.value!r}."
                )
            if (len(pattern.value) - len(pattern.value.rstrip("\\"))) % 2:
                raise Cql2Error(
                    "The LIKE pattern ends with the escape character '\\'; "
                    "write '\\\\' for a backslash."
                )
        pattern_sql = self._text(pattern, "LIKE")
        word = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return sql.SQL("({} {} {})").format(lhs, sql.SQL(word), pattern_sql)

    def _text(self, value: _Scalar, op: str) -> sql.Composable:
        """A string operand: a literal as text, another type's column cast."""
        if isinstance(value, _Lit):
            if value.kind in ("geometry", "interval", "duration"):
                raise Cql2Error(f"{op} takes strings, not {_describe(value.kind)}.")
            return self.bind(_coerce(value.value, "string", "the value"))
        if value.kind == "geometry":
            raise Cql2Error(f"{op} takes strings, not the geometry.")
        if value.kind == "string":
            return value.sql
        return sql.SQL("CAST({} AS text)").format(value.sql)

    def _is_null(self, node: Any) -> sql.Composable:
        target = node.lhs
        if isinstance(target, pgf_ast.Attribute) and target.name not in self.fields:
            value: sql.Composable = self._geometry_property(target.name)
        else:
            scalar = self.scalar(target)
            value = scalar.sql if isinstance(scalar, _Expr) else self.bind(scalar.value)
        return sql.SQL("({} IS {}NULL)").format(
            value, sql.SQL("NOT " if node.not_ else "")
        )

    # -- spatial -------------------------------------------------------------
    def _spatial(self, node: Any) -> sql.Composable:
        function = _SPATIAL[type(node)]
        return sql.SQL("{}({}, {})").format(
            sql.SQL(function), self.geometry(node.lhs), self.geometry(node.rhs)
        )

    def _relate(self, node: Any) -> sql.Composable:
        pattern = str(node.pattern)
        if not _RELATE_PATTERN.match(pattern):
            raise Cql2Error(
                "The RELATE pattern must be 9 characters of 0, 1, 2, T, F or *."
            )
        return sql.SQL("ST_Relate({}, {}, {})").format(
            self.geometry(node.lhs), self.geometry(node.rhs), self.bind(pattern)
        )

    def _bbox(self, node: Any) -> sql.Composable:
        corners = [node.minx, node.miny, node.maxx, node.maxy]
        if not all(_is_number(v) for v in corners):
            raise Cql2Error("BBOX takes 4 numbers: minx, miny, maxx, maxy.")
        srid, flip = self.filter_srid, self.flip
        if node.crs:
            try:
                srid, flip = crs_srid(node.crs), northing_first(node.crs)
            except ValueError as exc:
                raise Cql2Error(f"BBOX: {exc}") from exc
        box = self._geometry_literal(_box(*corners), srid, flip)
        return sql.SQL("ST_Intersects({}, {})").format(self.geometry(node.lhs), box)

    def geometry(self, node: Any) -> sql.Composable:
        """A geometry operand: the feature geometry or a literal."""
        if isinstance(node, pgf_ast.Attribute):
            return self._geometry_property(node.name)
        if isinstance(node, pgf_values.Geometry):
            return self._geometry_literal(node.geometry, self.filter_srid, self.flip)
        if isinstance(node, pgf_values.Envelope):
            box = _box(node.x1, node.y1, node.x2, node.y2)
            return self._geometry_literal(box, self.filter_srid, self.flip)
        if isinstance(node, pgf_ast.Function) and node.name.lower() == "bbox":
            args = list(node.arguments)
            if len(args) == 6:
                args = [args[0], args[1], args[3], args[4]]
            if len(args) != 4 or not all(_is_number(v) for v in args):
                raise Cql2Error(
                    "BBOX(...) takes 4 numbers (minx, miny, maxx, maxy) or 6."
                )
            return self._geometry_literal(_box(*args), self.filter_srid, self.flip)
        raise Cql2Error(
            f"Spatial operators compare geometries: the geometry property "
            f"({_geometry_hint(self.geometry_names)}) or a literal such as "
            f"POINT(114.17 22.30) or BBOX(114.1, 22.2, 114.3, 22.4); got "
            f"{_show(node)}."
        )

    def _geometry_property(self, name: str) -> sql.Composable:
        if name in self.geometry_names:
            return sql.Identifier("t", _GEOM_COLUMN)
        if name in self.fields:
            raise Cql2Error(
                f"Property {name!r} is not a geometry; the geometry is "
                f"{_geometry_hint(self.geometry_names)}."
            )
        raise self._unknown(name)

    def _geometry_literal(
        self, geometry: Mapping[str, Any], srid: int, flip: bool
    ) -> sql.Composable:
        clean = _clean_geometry(geometry, flip)
        crs = geometry.get("crs")
        if isinstance(crs, Mapping):  # EWKT "SRID=2326;POINT(...)": x, y order
            match = re.search(r"(\d+)$", str(crs.get("properties", {}).get("name")))
            if match:
                srid = int(match.group(1))
                clean = _clean_geometry(geometry, False)
        if srid == 4326:
            _check_lonlat(clean, flip)
        elif srid != self.srid:
            _check_domain(clean, srid)
        expr: sql.Composable = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), {})").format(
            self.bind(json.dumps(clean)), sql.Literal(srid)
        )
        if clean["type"] in ("Polygon", "MultiPolygon", "GeometryCollection"):
            # A self-intersecting polygon would make GEOS fail the query.
            expr = sql.SQL("ST_MakeValid({})").format(expr)
        if srid != self.srid:
            expr = sql.SQL("ST_Transform({}, {})").format(expr, sql.Literal(self.srid))
        return expr

    # -- temporal ------------------------------------------------------------
    def _temporal(self, node: Any) -> sql.Composable:
        rule = _TEMPORAL_RULES.get(type(node))
        if rule is None:
            raise Cql2Error(f"The temporal operator {node.op.value} is not supported.")
        guards: list[sql.Composable] = []
        lhs = self._interval(node.lhs, guards)
        rhs = self._interval(node.rhs, guards)
        alternatives: list[sql.Composable] = []
        for conjunction in rule(lhs, rhs):
            terms: list[sql.Composable] = []
            false = False
            for a, op, b in conjunction:
                static = _static(a, op, b)
                if static is None:
                    terms.append(sql.SQL("{} {} {}").format(a, sql.SQL(op), b))
                elif not static:
                    false = True
            if false:
                continue
            if not terms:
                alternatives = [_TRUE]
                break
            alternatives.append(sql.SQL("({})").format(sql.SQL(" AND ").join(terms)))
        body = sql.SQL(" OR ").join(alternatives) if alternatives else _FALSE
        # A NULL time is in no relation with anything (not even '..'/'..').
        return sql.SQL("({})").format(sql.SQL(" AND ").join([*guards, body]))

    def _interval(self, node: Any, guards: list[sql.Composable]) -> _Interval:
        if isinstance(node, pgf_values.Interval):
            return (
                self._instant(node.start, _NEG_INF),
                self._instant(node.end, _POS_INF),
            )
        if isinstance(node, list | tuple) and len(node) == 2:
            return (self._instant(node[0], _NEG_INF), self._instant(node[1], _POS_INF))
        value = self.scalar(node)
        if isinstance(value, _Expr):
            if value.kind not in _TEMPORAL:
                raise Cql2Error(
                    f"Temporal operators need a date or timestamp property; "
                    f"{value.name} is {_describe(value.kind)}."
                )
            guards.append(sql.SQL("{} IS NOT NULL").format(value.sql))
            return (value.sql, value.sql)
        instant = self._instant(value.value, _NEG_INF)
        return (instant, instant)

    def _instant(self, value: Any, open_end: _Inf) -> _Bound:
        if value is None or value == "..":
            return open_end
        if isinstance(value, dt.timedelta):
            raise Cql2Error(
                "Durations are not supported in intervals; give both ends as "
                "dates or timestamps (or '..' for an open end)."
            )
        if isinstance(value, dt.date):
            return self.bind(value)
        if isinstance(value, str):
            return self.bind(_coerce(value, "datetime", "the interval"))
        raise Cql2Error(
            f"Temporal operators take dates, timestamps and intervals, not "
            f"{value!r}: T_AFTER(\"OPENED\", DATE('2010-01-01'))."
        )

    # -- scalars -------------------------------------------------------------
    def scalar(self, node: Any) -> _Scalar:
        """A scalar operand: a property, a function, arithmetic, a literal."""
        if isinstance(node, pgf_ast.Attribute):
            return self._attribute(node.name)
        if isinstance(node, pgf_ast.Arithmetic):
            return self._arithmetic(node)
        if isinstance(node, pgf_ast.Function):
            return self._function(node)
        if isinstance(node, pgf_ast.Node):
            raise Cql2Error(f"{_show(node)} cannot be used as a value here.")
        return _Lit(node)

    def _attribute(self, name: str) -> _Expr:
        schema = self.fields.get(name)
        if schema is None:
            if name in self.geometry_names:
                return _Expr(sql.Identifier("t", _GEOM_COLUMN), "geometry", repr(name))
            raise self._unknown(name)
        column: sql.Composable = sql.Identifier("t", name.replace("%", "%%"))
        kind = _field_kind(schema)
        if kind == "other":
            column = sql.SQL("CAST({} AS text)").format(column)
            kind = "string"
        return _Expr(column, kind, f"property {name!r}")

    def _unknown(self, name: str) -> Cql2Error:
        hint = ""
        folded = [f for f in self.fields if f.lower() == name.lower()]
        if folded:
            hint = f" Property names are case-sensitive: did you mean {folded[0]!r}?"
        else:
            known = [*self.fields, *sorted(self.geometry_names)]
            close = difflib.get_close_matches(name, known, n=3)
            if close:
                hint = " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        return Cql2Error(
            f"Unknown property {name!r} in filter.{hint} The properties you can "
            f"filter on are listed at {_QUERYABLES}; the geometry is "
            f"{_geometry_hint(self.geometry_names)}."
        )

    def _arithmetic(self, node: Any) -> _Expr:
        op = _ARITHMETIC[type(node)]
        operands: list[sql.Composable] = []
        kinds: list[str] = []
        for side in (node.lhs, node.rhs):
            value = self.scalar(side)
            if isinstance(value, _Lit):
                if value.kind not in _NUMERIC:
                    raise Cql2Error(
                        f"Arithmetic ({op}) takes numbers, not {value.value!r}."
                    )
                operands.append(self.bind(value.value))
            else:
                if value.kind not in _NUMERIC:
                    raise Cql2Error(
                        f"Arithmetic ({op}) takes numbers; {value.name} is "
                        f"{_describe(value.kind)}."
                    )
                operands.append(value.sql)
            kinds.append(value.kind)
        left, right = operands
        if op == "/":
            # Division in floating point, and x / 0 is NULL (matches nothing)
            # instead of an error for the whole request.
            expr = sql.SQL("(CAST({} AS double precision) / NULLIF({}, 0))").format(
                left, right
            )
            return _Expr(expr, "number", "the arithmetic")
        if kinds == ["integer", "integer"]:
            # numeric: bigint * bigint must not overflow into an error.
            expr = sql.SQL("(CAST({} AS numeric) {} {})").format(
                left, sql.SQL(op), right
            )
            return _Expr(expr, "integer", "the arithmetic")
        expr = sql.SQL("({} {} {})").format(left, sql.SQL(op), right)
        return _Expr(expr, "number", "the arithmetic")

    def _function(self, node: Any) -> _Scalar:
        name = str(node.name).lower()
        args = list(node.arguments)
        if name in ("lower", "upper", "casei"):
            if len(args) != 1:
                raise Cql2Error('CASEI takes one argument: CASEI("NAME_EN").')
            value = self._text(self.scalar(args[0]), "CASEI")
            function = "upper" if name == "upper" else "lower"
            return _Expr(
                sql.SQL("{}({})").format(sql.SQL(function), value),
                "string",
                "CASEI(...)",
            )
        if name == "accenti":
            raise Cql2Error("ACCENTI is not supported; CASEI is.")
        if name == "bbox":
            raise Cql2Error(
                "BBOX(...) is a geometry: use it in a spatial operator such as "
                "S_INTERSECTS(geometry, BBOX(114.1, 22.2, 114.3, 22.4))."
            )
        raise Cql2Error(f"Unknown function {node.name!r}; CASEI is supported.")

    def bind(self, value: Any) -> sql.Composable:
        """A placeholder for ``value`` (a new ``cql_<n>`` parameter), typed."""
        while f"cql_{self._next}" in self.params:
            self._next += 1
        name = f"cql_{self._next}"
        self._next += 1
        if isinstance(value, bool):
            pg_type = "boolean"
        elif isinstance(value, int):
            pg_type = "bigint" if -_INT64 <= value < _INT64 else "numeric"
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Cql2Error("Numbers in a filter must be finite.")
            pg_type = "double precision"
        elif isinstance(value, str):
            if "\x00" in value:
                raise Cql2Error("Strings in a filter cannot contain NUL characters.")
            pg_type = "text"
        elif isinstance(value, dt.datetime):
            if value.tzinfo is not None and value.utcoffset() is not None:
                value = value.astimezone(dt.UTC)
                pg_type = "timestamptz"
            else:
                pg_type = "timestamp"
        elif isinstance(value, dt.date):
            pg_type = "date"
        elif isinstance(value, dt.time):
            value = value.replace(tzinfo=None)
            pg_type = "time"
        else:
            raise Cql2Error(
                f"{_describe(_literal_kind(value)).capitalize()} ({value!r}) "
                "cannot be used here."
            )
        self.params[name] = value
        return sql.SQL("CAST({} AS {})").format(sql.Placeholder(name), sql.SQL(pg_type))

    _HANDLERS: ClassVar[Mapping[type, Callable[[_Compiler, Any], sql.Composable]]] = {
        pgf_ast.Between: _between,
        pgf_ast.In: _in,
        pgf_ast.Like: _like,
        pgf_ast.IsNull: _is_null,
        pgf_ast.Relate: _relate,
        pgf_ast.BBox: _bbox,
    }


def _coerce(value: Any, kind: str, target: str) -> Any:
    """``value`` (a literal) as the type ``kind`` of ``target``, or a Cql2Error."""
    have = _literal_kind(value)

    def refuse() -> Cql2Error:
        example = _EXAMPLES.get(kind)
        tip = f" such as {example}" if example else ""
        return Cql2Error(
            f"{target[0].upper()}{target[1:]} is {_describe(kind)}: compare it "
            f"with {_describe(kind)}{tip}, not {value!r}."
        )

    if have in ("geometry", "interval", "duration"):
        raise refuse()
    if kind == "string":
        if have == "string":
            return value
        if have in ("integer", "number"):
            return str(value)
        if have in ("date", "datetime", "time"):
            return value.isoformat()
        raise refuse()
    if kind in _NUMERIC:
        if have in _NUMERIC:
            return value
        if have == "string":
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                raise refuse() from None
            if not math.isfinite(number):
                raise refuse()
            return number
        raise refuse()
    if kind == "boolean":
        if have == "boolean":
            return value
        if have == "string" and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise refuse()
    if kind in _TEMPORAL:
        if have in _TEMPORAL:
            return value
        if have == "string":
            return _parse_time(value, refuse)
        raise refuse()
    if kind == "time":
        if have == "time":
            return value
        if have == "string":
            try:
                return dt.time.fromisoformat(value.strip())
            except ValueError:
                raise refuse() from None
        raise refuse()
    if have == kind:
        return value
    raise refuse()


def _parse_time(text: str, refuse: Callable[[], Cql2Error]) -> dt.date:
    text = text.strip()
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else _datetime(text)
    except ValueError:
        raise refuse() from None


def _datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _show(node: Any) -> str:
    if isinstance(node, pgf_ast.Attribute):
        return f"property {node.name!r}"
    if isinstance(node, pgf_ast.Node):
        op = _OPERATOR_NAMES.get(type(node))
        return f"the {op} expression" if op else f"{type(node).__name__}(...)"
    return repr(node)


def _geometry_hint(names: Collection[str]) -> str:
    visible = [n for n in names if not n.startswith("_")] or list(names)
    return " or ".join(repr(n) for n in sorted(visible))


def _clean_geometry(geometry: Mapping[str, Any], flip: bool) -> dict[str, Any]:
    """A GeoJSON geometry with 2D, finite, optionally swapped coordinates.

    Checked here so that PostGIS never sees malformed input (its errors would
    be 500s); a ``crs`` member is dropped (the SRID is set explicitly).
    """
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list | tuple) or not parts:
            raise Cql2Error("A GEOMETRYCOLLECTION needs at least one geometry.")
        return {
            "type": kind,
            "geometries": [_clean_geometry(part, flip) for part in parts],
        }
    depth = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }.get(str(kind))
    if depth is None:
        raise Cql2Error(f"Unknown geometry type {kind!r} in the filter.")
    coordinates = _positions(geometry.get("coordinates"), depth, flip)
    _check_shape(str(kind), coordinates)
    return {"type": kind, "coordinates": coordinates}


def _positions(value: Any, depth: int, flip: bool) -> Any:
    if depth == 0:
        if (
            not isinstance(value, list | tuple)
            or len(value) < 2
            or not all(_is_number(v) for v in value)
        ):
            raise Cql2Error(
                f"Geometry coordinates must be 2 to 4 finite numbers, not {value!r}."
            )
        x, y = float(value[0]), float(value[1])
        return [y, x] if flip else [x, y]
    if not isinstance(value, list | tuple) or not value:
        raise Cql2Error("A geometry in the filter has empty or malformed coordinates.")
    return [_positions(v, depth - 1, flip) for v in value]


def _check_shape(kind: str, coordinates: Any) -> None:
    lines: Sequence[Any] = ()
    rings: Sequence[Any] = ()
    if kind == "LineString":
        lines = [coordinates]
    elif kind == "MultiLineString":
        lines = coordinates
    elif kind == "Polygon":
        rings = coordinates
    elif kind == "MultiPolygon":
        rings = [ring for polygon in coordinates for ring in polygon]
    for line in lines:
        if len(line) < 2:
            raise Cql2Error("A LINESTRING in the filter needs at least 2 points.")
    for ring in rings:
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise Cql2Error(
                "A POLYGON ring in the filter needs at least 4 points and must "
                "end where it starts."
            )


def _check_lonlat(geometry: Mapping[str, Any], flip: bool) -> None:
    def walk(value: Any) -> None:
        if value and isinstance(value[0], float):
            lon, lat = value
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                order = "latitude, longitude" if flip else "longitude, latitude"
                raise Cql2Error(
                    f"Coordinates {value[::-1] if flip else value} are outside "
                    f"the world in {order} order; check the axis order of "
                    "filter-crs (CRS84: longitude first; EPSG:4326: latitude "
                    "first)."
                )
            return
        for item in value:
            walk(item)

    if geometry["type"] == "GeometryCollection":
        for part in geometry["geometries"]:
            _check_lonlat(part, flip)
    else:
        walk(geometry["coordinates"])


@functools.lru_cache(maxsize=16)
def _to_lonlat(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(srid, 4326, always_xy=True)


def _check_domain(geometry: Mapping[str, Any], srid: int) -> None:
    """Refuse coordinates PROJ cannot transform (PostGIS would fail: a 500)."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(value: Any) -> None:
        if value and isinstance(value[0], float):
            xs.append(value[0])
            ys.append(value[1])
            return
        for item in value:
            walk(item)

    parts = geometry.get("geometries") or [geometry]
    for part in parts:
        walk(part["coordinates"])
    try:
        lon, lat = _to_lonlat(srid).transform(xs, ys)
    except pyproj.exceptions.ProjError as exc:
        raise Cql2Error(f"filter-crs EPSG:{srid}: {exc}") from exc
    if not all(math.isfinite(v) for v in (*lon, *lat)):
        raise Cql2Error(
            f"Some coordinates are outside the area EPSG:{srid} covers; check "
            "the values and the axis order of filter-crs (EPSG:2326: northing "
            "first)."
        )
