"""The SQL the feature provider and sdi's own items handlers run, in one place.

Every statement is composed with ``psycopg.sql`` (identifiers and literals)
plus bound parameters for request values. GeoJSON is built by PostgreSQL as
text (``ST_AsGeoJSON`` and ``to_json`` of the attributes, concatenated), one
row per feature, so no geometry or attribute passes through Python objects:
the handlers stream the rows to the client as they come.

Pages select the rows first (``WHERE``, ``ORDER BY``, ``LIMIT``/``OFFSET``
over plain columns) and only then build JSON for those rows: the rows an
``OFFSET`` skips are never turned into GeoJSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from sdi.providers.crs import OutputCrs

__all__ = [
    "DATA_SCHEMA",
    "Condition",
    "FeatureQuery",
    "LayerTable",
    "Statement",
    "changes_count_sql",
    "changes_sql",
    "checkpoints_sql",
    "count_sql",
    "feature_sql",
    "features_sql",
    "in_version",
    "locate_sql",
    "position_sql",
]

DATA_SCHEMA = "sdi_data"
FID = "_sdi_fid"
GEOM = "_sdi_geom"

Params = dict[str, Any]
#: What the builders return: composed SQL, or flat SQL text kept for reuse.
Statement = sql.SQL | sql.Composed
#: Builds a boolean SQL expression over the table alias ``t``, adding the
#: values it binds to the parameter mapping it is given (a CQL2 filter).
Condition = Callable[[Params], sql.Composable]


@dataclass(frozen=True)
class LayerTable:
    """One version of a layer table, as the configuration describes it."""

    table: str
    version: int
    srid: int
    fields: tuple[str, ...]
    time_field: str | None = None
    #: Fields of JSON Schema type "number" (floating point columns).
    numbers: frozenset[str] = frozenset()


@dataclass
class FeatureQuery:
    """A validated items request; every name in it is one of the layer's fields."""

    output: OutputCrs
    offset: int = 0
    limit: int = 10
    #: Envelopes (minx, miny, maxx, maxy) in ``envelope_srid``, x/y order; a
    #: feature matches when it intersects any of them.
    envelopes: list[tuple[float, float, float, float]] = field(default_factory=list)
    #: SRID of the envelopes; None: the storage SRID (no transformation).
    envelope_srid: int | None = None
    equals: list[tuple[str, str]] = field(default_factory=list)
    #: Inclusive bounds on the time field; None is open.
    time_range: tuple[str | None, str | None] | None = None
    time_instant: str | None = None
    #: (field, descending)
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    #: Properties to return (None: all).
    select: tuple[str, ...] | None = None
    skip_geometry: bool = False
    #: Keyset paging: only rows after this row id (default order only; the
    #: offset then only numbers the page).
    after: int | None = None
    #: A further condition (CQL2), compiled into the statement's parameters.
    condition: Condition | None = None

    @property
    def filtered(self) -> bool:
        """Whether anything but the version selects rows (paging aside)."""
        return bool(
            self.envelopes
            or self.equals
            or self.time_range is not None
            or self.time_instant is not None
            or self.condition is not None
        )


def _table(layer: LayerTable) -> sql.Composable:
    # Slugs are [a-z0-9_] (checked by the registry and the provider).
    return sql.SQL("{} AS t").format(sql.Identifier(DATA_SCHEMA, layer.table))


def _col(name: str, alias: str = "t") -> sql.Composable:
    # Statements always run with a parameter mapping, so psycopg reads "%" as
    # the start of a placeholder: attribute names from files may contain one.
    return sql.Identifier(alias, name.replace("%", "%%"))


def in_version(version: int, alias: str = "t") -> sql.Composable:
    """Rows of ``alias`` that are in version ``version`` of their layer.

    Literals, not parameters: the version is fixed per statement, and the
    planner can then use partial indexes on it.
    """
    return sql.SQL(
        "{a}._sdi_from <= {v} AND ({a}._sdi_to IS NULL OR {a}._sdi_to > {v})"
    ).format(a=sql.Identifier(alias), v=sql.Literal(version))


def _envelope(layer: LayerTable, query: FeatureQuery, i: int, params: Params) -> Any:
    names = [f"bbox{i}_{j}" for j in range(4)]
    params.update(zip(names, query.envelopes[i], strict=True))
    srid = query.envelope_srid if query.envelope_srid is not None else layer.srid
    box = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
        *(sql.Placeholder(n) for n in names), sql.Literal(srid)
    )
    if srid != layer.srid:
        # The box's outline, densified, in the storage CRS: closer to the
        # box the client drew than the envelope of its four corners.
        box = sql.SQL("ST_Transform(ST_Segmentize({}, {}), {})").format(
            box,
            sql.Literal(0.01 if srid in (4326, 4490) else 1000.0),
            sql.Literal(layer.srid),
        )
    return sql.SQL("ST_Intersects({}, {})").format(_col(GEOM), box)


def _where(layer: LayerTable, query: FeatureQuery, params: Params) -> sql.Composable:
    clauses: list[sql.Composable] = [in_version(layer.version)]
    if query.envelopes:
        boxes = [
            _envelope(layer, query, i, params) for i in range(len(query.envelopes))
        ]
        clauses.append(sql.SQL("({})").format(sql.SQL(" OR ").join(boxes)))
    for i, (name, value) in enumerate(query.equals):
        key = f"eq{i}"
        params[key] = value
        clauses.append(sql.SQL("{} = {}").format(_col(name), sql.Placeholder(key)))
    if layer.time_field is not None:
        column = _col(layer.time_field)
        if query.time_instant is not None:
            params["t_at"] = query.time_instant
            clauses.append(sql.SQL("{} = {}").format(column, sql.Placeholder("t_at")))
        if query.time_range is not None:
            start, end = query.time_range
            if start is not None:
                params["t_start"] = start
                clauses.append(
                    sql.SQL("{} >= {}").format(column, sql.Placeholder("t_start"))
                )
            if end is not None:
                params["t_end"] = end
                clauses.append(
                    sql.SQL("{} <= {}").format(column, sql.Placeholder("t_end"))
                )
    if query.condition is not None:
        clauses.append(sql.SQL("({})").format(query.condition(params)))
    return sql.SQL(" AND ").join(clauses)


def _geometry(srid: int, output: OutputCrs, alias: str = "t") -> sql.Composable:
    geom: sql.Composable = _col(GEOM, alias)
    if output.srid != srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(output.srid))
    if output.flip:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    # options 0: no "crs" member in the geometry (PostGIS adds one by default
    # for SRIDs other than 4326). Text, not json: nothing re-parses it.
    return sql.SQL("COALESCE(ST_AsGeoJSON({}, {}, 0), 'null')").format(
        geom, sql.Literal(output.precision)
    )


def _properties(names: tuple[str, ...], alias: str) -> sql.Composable:
    if not names:
        return sql.SQL("'{}'")
    return sql.SQL("to_json({})::text").format(sql.Identifier(alias))


def _feature_text(
    srid: int,
    output: OutputCrs,
    names: tuple[str, ...],
    skip: bool,
    *,
    props: str = "p",
    change: sql.Composable | None = None,
) -> sql.Composable:
    """One GeoJSON Feature as text, for the row ``t`` and its attribute row."""
    geometry = sql.SQL("'null'") if skip else _geometry(srid, output)
    members: sql.Composable = sql.SQL("")
    if change is not None:
        # A foreign member saying what happened to the feature (changes).
        members = sql.SQL(" || ',\"change\":\"' || {} || '\"'").format(change)
    return sql.SQL(
        '\'{{"type":"Feature","id":\' || t._sdi_fid{} || \',"geometry":\' || {}'
        " || ',\"properties\":' || {} || '}}'"
    ).format(members, geometry, _properties(names, props))


def _value(layer: LayerTable, name: str) -> sql.Composable:
    """A column for the attribute row, named as the column.

    PostgreSQL writes a float with no fractional part as an integer (``293``);
    clients that guess attribute types from the first features (GDAL) would
    then read the column as integers and truncate ``293.2`` further on. Such
    values get a ``.0``, as Python's json writes them.
    """
    column = _col(name)
    if name not in layer.numbers:
        return column
    return sql.SQL(
        "CASE WHEN abs({c}) < 1e15 AND {c} = trunc({c})"
        " THEN (to_json({c})::text || '.0')::json ELSE to_json({c}) END AS {n}"
    ).format(c=column, n=sql.Identifier(name.replace("%", "%%")))


def _attributes(
    layer: LayerTable, names: tuple[str, ...], alias: str = "p"
) -> sql.Composable:
    """A lateral row of exactly these columns, in order, keyed by their names.

    to_json() of it keeps the attribute order of the file, with any number of
    columns (json_build_object stops at 50 pairs).
    """
    if not names:
        return sql.SQL("")
    columns = sql.SQL(", ").join(_value(layer, n) for n in names)
    return sql.SQL(" CROSS JOIN LATERAL (SELECT {}) AS {}").format(
        columns, sql.Identifier(alias)
    )


def _names(layer: LayerTable, select: tuple[str, ...] | None) -> tuple[str, ...]:
    return layer.fields if select is None else select


def _order(query: FeatureQuery) -> sql.Composable:
    keys: list[sql.Composable] = [
        sql.SQL("{} {}").format(_col(name), sql.SQL("DESC" if desc else "ASC"))
        for name, desc in query.sortby
    ]
    # The row id last: pages are stable and never overlap or skip.
    keys.append(sql.SQL("t._sdi_fid"))
    return sql.SQL(", ").join(keys)


#: Statements of pages without a CQL2 filter, by the shape of the query
#: (everything but the values, which are parameters), as flat SQL text.
_STATEMENTS: dict[tuple[Any, ...], sql.SQL] = {}
_STATEMENTS_MAX = 512


def _shape(layer: LayerTable, query: FeatureQuery) -> tuple[Any, ...]:
    start, end = query.time_range or (None, None)
    return (
        layer,
        query.output,
        query.select,
        query.skip_geometry,
        tuple(query.sortby),
        len(query.envelopes),
        query.envelope_srid,
        tuple(name for name, _ in query.equals),
        query.time_instant is not None,
        query.time_range is not None,
        start is not None,
        end is not None,
        query.after is not None and not query.sortby,
    )


def _features_params(layer: LayerTable, query: FeatureQuery, extra: int) -> Params:
    """The parameters :func:`_compose_features` binds, without composing."""
    params: Params = {"limit": query.limit + extra}
    for i, envelope in enumerate(query.envelopes):
        params.update(zip([f"bbox{i}_{j}" for j in range(4)], envelope, strict=True))
    for i, (_, value) in enumerate(query.equals):
        params[f"eq{i}"] = value
    if layer.time_field is not None:
        if query.time_instant is not None:
            params["t_at"] = query.time_instant
        if query.time_range is not None:
            start, end = query.time_range
            if start is not None:
                params["t_start"] = start
            if end is not None:
                params["t_end"] = end
    if query.after is not None and not query.sortby:
        params["after"] = query.after
    else:
        params["offset"] = query.offset
    return params


def features_sql(
    layer: LayerTable, query: FeatureQuery, *, extra: int = 0
) -> tuple[Statement, Params]:
    """One page of features: rows of (row id, GeoJSON Feature text).

    ``extra`` more rows than the limit are selected (1: to learn whether
    another page follows without counting). Statements without a filter
    condition are composed once per shape of query and kept as text.
    """
    if query.condition is not None:
        return _compose_features(layer, query, extra)
    key = _shape(layer, query)
    statement = _STATEMENTS.get(key)
    if statement is None:
        composed, _ = _compose_features(layer, query, extra)
        statement = sql.SQL(composed.as_string(None))
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
        _STATEMENTS[key] = statement
    return statement, _features_params(layer, query, extra)


def _compose_features(
    layer: LayerTable, query: FeatureQuery, extra: int
) -> tuple[sql.Composed, Params]:
    params: Params = {"limit": query.limit + extra}
    where = _where(layer, query, params)
    if query.after is not None and not query.sortby:
        params["after"] = query.after
        where = sql.SQL("{} AND t._sdi_fid > %(after)s").format(where)
        paging = sql.SQL("LIMIT %(limit)s")
    else:
        params["offset"] = query.offset
        paging = sql.SQL("LIMIT %(limit)s OFFSET %(offset)s")
    names = _names(layer, query.select)
    statement = sql.SQL(
        "SELECT t._sdi_fid, {feature} FROM ("
        "SELECT t.* FROM {table} WHERE {where} ORDER BY {order} {paging}"
        ") AS t{attributes} ORDER BY {order}"
    ).format(
        feature=_feature_text(layer.srid, query.output, names, query.skip_geometry),
        table=_table(layer),
        where=where,
        order=_order(query),
        paging=paging,
        attributes=_attributes(layer, names),
    )
    return statement, params


def count_sql(
    layer: LayerTable, query: FeatureQuery, *, cap: int | None = None
) -> tuple[sql.Composed, Params]:
    """How many features match the query (paging ignored).

    With ``cap``, counting stops after ``cap + 1`` rows: a result above
    ``cap`` only says "more than ``cap``".
    """
    params: Params = {}
    where = _where(layer, query, params)
    if cap is None:
        statement = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            _table(layer), where
        )
    else:
        params["cap"] = cap + 1
        statement = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT %(cap)s) AS c"
        ).format(_table(layer), where)
    return statement, params


def feature_sql(
    layer: LayerTable, fid: int, output: OutputCrs
) -> tuple[sql.SQL, Params]:
    """The feature with row id ``fid`` (GeoJSON text) if it is in the version."""
    return _feature_statement(layer, output), {"fid": fid}


@functools.lru_cache(maxsize=512)
def _feature_statement(layer: LayerTable, output: OutputCrs) -> sql.SQL:
    # Composed once per layer version and output CRS, and kept as text: the
    # feature-by-id route is hot and its statement never changes.
    statement = sql.SQL(
        "SELECT {feature} FROM {table}{attributes} WHERE {where} AND t._sdi_fid = "
        "%(fid)s"
    ).format(
        feature=_feature_text(layer.srid, output, layer.fields, False),
        table=_table(layer),
        attributes=_attributes(layer, layer.fields),
        where=in_version(layer.version),
    )
    return sql.SQL(statement.as_string())


def checkpoints_sql(layer: LayerTable, step: int) -> tuple[sql.Composed, Params]:
    """Row ids at positions 0, step, 2*step, ... of the version in id order.

    One pass over the version's ids; with them any offset is at most ``step``
    rows from a known id (versions never change, so they hold for good).
    """
    statement = sql.SQL(
        "SELECT s._sdi_fid FROM (SELECT t._sdi_fid, row_number() OVER "
        "(ORDER BY t._sdi_fid) - 1 AS n FROM {} WHERE {}) AS s "
        "WHERE s.n %% %(step)s = 0 ORDER BY s._sdi_fid"
    ).format(_table(layer), in_version(layer.version))
    return statement, {"step": step}


def position_sql(
    layer: LayerTable, start: int, skip: int
) -> tuple[sql.Composed, Params]:
    """The row id ``skip`` rows after row ``start`` (inclusive) in the version."""
    statement = sql.SQL(
        "SELECT t._sdi_fid FROM {} WHERE {} AND t._sdi_fid >= %(start)s "
        "ORDER BY t._sdi_fid OFFSET %(skip)s LIMIT 1"
    ).format(_table(layer), in_version(layer.version))
    return statement, {"start": start, "skip": skip}


def locate_sql(layer: LayerTable, fid: int) -> tuple[sql.Composed, Params]:
    """The version range (_sdi_from, _sdi_to) of row ``fid``, in any version."""
    statement = sql.SQL(
        "SELECT t._sdi_from, t._sdi_to FROM {} WHERE t._sdi_fid = %(fid)s"
    ).format(_table(layer))
    return statement, {"fid": fid}


def _only_in(v: int, w: int, alias: str) -> sql.Composable:
    """Rows of version ``v`` that are not in version ``w`` (v != w)."""
    a, lv, lw = sql.Identifier(alias), sql.Literal(v), sql.Literal(w)
    if v > w:
        return sql.SQL(
            "{a}._sdi_from > {w} AND {a}._sdi_from <= {v}"
            " AND ({a}._sdi_to IS NULL OR {a}._sdi_to > {v})"
        ).format(a=a, v=lv, w=lw)
    return sql.SQL(
        "{a}._sdi_from <= {v} AND {a}._sdi_to > {v} AND {a}._sdi_to <= {w}"
    ).format(a=a, v=lv, w=lw)


def _changes(old: LayerTable, new: LayerTable) -> sql.Composable:
    """(fid, change) of every feature state that differs between two versions.

    Added: in ``new`` with a key ``old`` lacks; changed: in ``new`` with a key
    ``old`` holds in another state (another ``_sdi_hash``); removed: in
    ``old`` with a key ``new`` lacks (the old state). Identity is ``_sdi_key``.
    """
    table = sql.Identifier(DATA_SCHEMA, old.table)
    return sql.SQL(
        "WITH o AS MATERIALIZED (SELECT o._sdi_fid, o._sdi_key, o._sdi_hash"
        " FROM {table} AS o WHERE {old_only}),"
        " n AS MATERIALIZED (SELECT n._sdi_fid, n._sdi_key, n._sdi_hash"
        " FROM {table} AS n WHERE {new_only})"
        " SELECT n._sdi_fid AS fid,"
        " CASE WHEN EXISTS (SELECT 1 FROM o WHERE o._sdi_key = n._sdi_key)"
        " THEN 'changed' ELSE 'added' END AS change FROM n"
        # a feature that left and came back as it was has not changed
        " WHERE NOT EXISTS (SELECT 1 FROM o"
        " WHERE o._sdi_key = n._sdi_key AND o._sdi_hash = n._sdi_hash)"
        " UNION ALL"
        " SELECT o._sdi_fid, 'removed' FROM o"
        " WHERE NOT EXISTS (SELECT 1 FROM n WHERE n._sdi_key = o._sdi_key)"
    ).format(
        table=table,
        old_only=_only_in(old.version, new.version, "o"),
        new_only=_only_in(new.version, old.version, "n"),
    )


def changes_sql(
    old: LayerTable, new: LayerTable, output: OutputCrs, *, offset: int, limit: int
) -> tuple[sql.Composed, Params]:
    """A page of the changes from ``old`` to ``new``: (row id, Feature text).

    Each Feature carries a ``"change"`` member (added, changed, removed) and
    the attributes of its own version: ``new``'s, or ``old``'s when removed.
    """
    attributes: sql.Composable = sql.SQL("")
    if old.fields:
        attributes += _attributes(old, old.fields, "po")
    if new.fields:
        attributes += _attributes(new, new.fields, "pn")
    feature = sql.SQL(
        "CASE WHEN c.change = 'removed' THEN {removed} ELSE {current} END"
    ).format(
        removed=_feature_text(
            old.srid, output, old.fields, False, props="po", change=sql.SQL("c.change")
        ),
        current=_feature_text(
            new.srid, output, new.fields, False, props="pn", change=sql.SQL("c.change")
        ),
    )
    statement = sql.SQL(
        "SELECT t._sdi_fid, {feature} FROM ("
        "SELECT c.fid, c.change FROM ({changes}) AS c ORDER BY c.fid"
        " LIMIT %(limit)s OFFSET %(offset)s) AS c"
        " JOIN {table} ON t._sdi_fid = c.fid{attributes} ORDER BY t._sdi_fid"
    ).format(
        feature=feature,
        changes=_changes(old, new),
        table=_table(new),
        attributes=attributes,
    )
    return statement, {"limit": limit, "offset": offset}


def changes_count_sql(old: LayerTable, new: LayerTable) -> tuple[sql.Composed, Params]:
    """How many (added, changed, removed) features between two versions."""
    statement = sql.SQL(
        "SELECT count(*) FILTER (WHERE change = 'added'),"
        " count(*) FILTER (WHERE change = 'changed'),"
        " count(*) FILTER (WHERE change = 'removed') FROM ({}) AS c"
    ).format(_changes(old, new))
    return statement, {}
