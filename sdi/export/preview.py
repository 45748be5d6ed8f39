"""A version's features as a GeoJSON FeatureCollection for the review map.

Bounded for big layers: at most ``limit`` features (a stable spread sample
when there are more), geometries in WGS 84, simplified to a tolerance well
under a pixel of the preview map, coordinates rounded, long text cut.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from psycopg import Connection, sql

from sdi.registry.models import Layer, Version

__all__ = ["DEFAULT_LIMIT", "preview_features"]

DEFAULT_LIMIT = 5_000
_MAX_TEXT = 200
# Fraction of the extent's larger side below which detail is dropped: a
# 1000-pixel map shows a pixel per 1/1000; 1/4000 stays sub-pixel when zoomed 4x.
_DETAIL = 1 / 4000


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[:_MAX_TEXT] + "…"
    return value


def preview_features(
    conn: Connection[Any],
    layer: Layer,
    version: Version,
    *,
    srid: int,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """GeoJSON of (up to ``limit`` features of) ``version``.

    Besides the features: ``numberMatched`` (the version's feature count),
    ``numberReturned``, ``bbox`` (the version's extent) and ``simplified``
    (the tolerance in degrees, 0 when geometries are exact).
    """
    fields = [f["name"] for f in version.schema.get("fields", [])]
    table = sql.Identifier("sdi_data", layer.slug)
    in_version = sql.SQL("_sdi_from <= %(n)s AND (_sdi_to IS NULL OR _sdi_to > %(n)s)")
    extent = version.extent
    tolerance = 0.0
    if extent and not version.geometry_type.endswith("Point"):
        tolerance = max(extent[2] - extent[0], extent[3] - extent[1]) * _DETAIL
    geom: sql.Composable = sql.Identifier("_sdi_geom")
    if srid != 4326:
        geom = sql.SQL("ST_Transform({}, 4326)").format(geom)
    if tolerance > 0:
        geom = sql.SQL("ST_SimplifyPreserveTopology({}, %(tolerance)s)").format(geom)
    matched = version.feature_count
    # More than the limit: a spread sample, stable across calls (by content hash).
    order = sql.SQL("_sdi_hash" if matched > limit else "_sdi_fid")
    query = sql.SQL(
        "SELECT _sdi_fid, ST_AsGeoJSON({geom}, 6){columns} FROM {table}"
        " WHERE {in_version} ORDER BY {order} LIMIT %(limit)s"
    ).format(
        geom=geom,
        columns=sql.SQL("").join(sql.SQL(", ") + sql.Identifier(f) for f in fields),
        table=table,
        in_version=in_version,
        order=order,
    )
    params = {"n": version.number, "tolerance": tolerance, "limit": limit}
    features = []
    for fid, geometry, *values in conn.execute(query, params):
        features.append(
            {
                "type": "Feature",
                "id": fid,
                "geometry": json.loads(geometry) if geometry else None,
                "properties": {
                    name: _json_value(v) for name, v in zip(fields, values, strict=True)
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "bbox": extent,
        "simplified": tolerance,
    }
