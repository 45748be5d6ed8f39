"""The SQL the feature provider runs, built in one place.

Every statement is composed with ``psycopg.sql`` (identifiers and literals)
plus bound parameters for request values; GeoJSON is built by PostgreSQL
(``json_build_object`` and ``ST_AsGeoJSON``) so no geometry passes through
Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from sdi.providers.crs import OutputCrs

__all__ = [
    "DATA_SCHEMA",
    "FeatureQuery",
    "LayerTable",
    "count_sql",
    "feature_sql",
    "features_sql",
]

DATA_SCHEMA = "sdi_data"
FID = "_sdi_fid"
GEOM = "_sdi_geom"

Params = dict[str, Any]


@dataclass(frozen=True)
class LayerTable:
    """One version of a layer table, as the configuration describes it."""

    table: str
    version: int
    srid: int
    fields: tuple[str, ...]
    time_field: str | None = None


@dataclass
class FeatureQuery:
    """A validated items request; every name in it is one of the layer's fields."""

    output: OutputCrs
    offset: int = 0
    limit: int = 10
    #: Envelopes (minx, miny, maxx, maxy) in the storage CRS; a feature matches
    #: when it intersects any of them.
    envelopes: list[tuple[float, float, float, float]] = field(default_factory=list)
    equals: list[tuple[str, str]] = field(default_factory=list)
    #: Inclusive bounds on the time field; None is open.
    time_range: tuple[str | None, str | None] | None = None
    time_instant: str | None = None
    #: (field, descending)
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    #: Properties to return (None: all).
    select: tuple[str, ...] | None = None
    skip_geometry: bool = False


def _table(layer: LayerTable) -> sql.Composable:
    # Slugs are [a-z0-9_] (checked by the registry and the provider).
    return sql.SQL("{} AS t").format(sql.Identifier(DATA_SCHEMA, layer.table))


def _col(name: str) -> sql.Composable:
    # Statements always run with a parameter mapping, so psycopg reads "%" as
    # the start of a placeholder: attribute names from files may contain one.
    return sql.Identifier("t", name.replace("%", "%%"))


def _in_version(layer: LayerTable) -> sql.Composable:
    # Literals, not parameters: the version is fixed per configuration, and
    # the planner can then use partial indexes on it.
    version = sql.Literal(layer.version)
    return sql.SQL(
        "t._sdi_from <= {v} AND (t._sdi_to IS NULL OR t._sdi_to > {v})"
    ).format(v=version)


def _where(layer: LayerTable, query: FeatureQuery, params: Params) -> sql.Composable:
    clauses: list[sql.Composable] = [_in_version(layer)]
    if query.envelopes:
        boxes = []
        for i, env in enumerate(query.envelopes):
            names = [f"bbox{i}_{j}" for j in range(4)]
            params.update(zip(names, env, strict=True))
            boxes.append(
                sql.SQL(
                    "ST_Intersects({g}, ST_MakeEnvelope({a}, {b}, {c}, {d}, {s}))"
                ).format(
                    g=_col(GEOM),
                    a=sql.Placeholder(names[0]),
                    b=sql.Placeholder(names[1]),
                    c=sql.Placeholder(names[2]),
                    d=sql.Placeholder(names[3]),
                    s=sql.Literal(layer.srid),
                )
            )
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
    return sql.SQL(" AND ").join(clauses)


def _geometry(layer: LayerTable, output: OutputCrs) -> sql.Composable:
    geom: sql.Composable = _col(GEOM)
    if output.srid != layer.srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(output.srid))
    if output.flip:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    # options 0: no "crs" member in the geometry (PostGIS adds one by default
    # for SRIDs other than 4326).
    return sql.SQL("ST_AsGeoJSON({}, {}, 0)::json").format(
        geom, sql.Literal(output.precision)
    )


def _feature_json(
    layer: LayerTable, output: OutputCrs, select: tuple[str, ...] | None, skip: bool
) -> sql.Composable:
    geometry = sql.SQL("NULL::json") if skip else _geometry(layer, output)
    names = layer.fields if select is None else select
    if names:
        properties: sql.Composable = sql.SQL("to_json(p)")
    else:
        properties = sql.SQL("'{}'::json")
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', t._sdi_fid, "
        "'geometry', {}, 'properties', {})"
    ).format(geometry, properties)


def _from(layer: LayerTable, select: tuple[str, ...] | None) -> sql.Composable:
    names = layer.fields if select is None else select
    if not names:
        return _table(layer)
    # A row of exactly the published columns, in order, keyed by their names:
    # to_json() of it keeps the attribute order of the file, with any number of
    # columns (json_build_object stops at 50 pairs).
    columns = sql.SQL(", ").join(_col(n) for n in names)  # named as the columns
    return sql.SQL("{} CROSS JOIN LATERAL (SELECT {}) AS p").format(
        _table(layer), columns
    )


def _order(query: FeatureQuery) -> sql.Composable:
    keys: list[sql.Composable] = [
        sql.SQL("{} {}").format(_col(name), sql.SQL("DESC" if desc else "ASC"))
        for name, desc in query.sortby
    ]
    # The row id last: pages are stable and never overlap or skip.
    keys.append(sql.SQL("t._sdi_fid"))
    return sql.SQL(", ").join(keys)


def features_sql(layer: LayerTable, query: FeatureQuery) -> tuple[sql.Composed, Params]:
    """One page of features: rows of one GeoJSON Feature each."""
    params: Params = {"limit": query.limit, "offset": query.offset}
    statement = sql.SQL(
        "SELECT {feature} FROM {source} WHERE {where} ORDER BY {order} "
        "LIMIT %(limit)s OFFSET %(offset)s"
    ).format(
        feature=_feature_json(layer, query.output, query.select, query.skip_geometry),
        source=_from(layer, query.select),
        where=_where(layer, query, params),
        order=_order(query),
    )
    return statement, params


def count_sql(layer: LayerTable, query: FeatureQuery) -> tuple[sql.Composed, Params]:
    """How many features match the query (paging ignored)."""
    params: Params = {}
    statement = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        _table(layer), _where(layer, query, params)
    )
    return statement, params


def feature_sql(
    layer: LayerTable, fid: int, output: OutputCrs
) -> tuple[sql.Composed, Params]:
    """The feature with row id ``fid`` if it is in the layer's version."""
    statement = sql.SQL(
        "SELECT {feature} FROM {source} WHERE {where} AND t._sdi_fid = %(fid)s"
    ).format(
        feature=_feature_json(layer, output, None, False),
        source=_from(layer, None),
        where=_in_version(layer),
    )
    return statement, {"fid": fid}
