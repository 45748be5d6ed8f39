"""A pygeoapi feature provider over one version of a versioned layer table.

Configured by ``sdi.publish`` (never by hand)::

    providers:
      - type: feature
        name: sdi.providers.features.VersionedFeatureProvider
        data:
          table: landsd_buildings   # sdi_data.<table>
          version: 3                # the published version
          srid: 4326                # SRID of the stored geometries
          fields:                   # the version's attributes, in file order
            BuildingNameEN: {type: string}
            Floors: {type: integer}
        id_field: _sdi_fid
        storage_crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84
        crs: [...]

pygeoapi builds a provider per request, so construction only reads this
definition: no database access, no schema reflection. Connections come from
the process-wide pool in :mod:`sdi.providers.pool`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import psycopg
import pygeofilter.ast as pgf_ast
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout
from pygeoapi.crs import DEFAULT_STORAGE_CRS, CrsTransformSpec
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from sdi.providers.cql2 import Cql2Error, filter_sql
from sdi.providers.crs import OutputCrs, northing_first, output_crs
from sdi.providers.pool import get_pool
from sdi.providers.sql import (
    Condition,
    FeatureQuery,
    LayerTable,
    Params,
    Statement,
    count_sql,
    feature_sql,
    features_sql,
)

__all__ = ["ProviderUnavailableError", "VersionedFeatureProvider"]

LOGGER = logging.getLogger(__name__)

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FID = re.compile(r"^[0-9]{1,18}$")
_POOL_TIMEOUT_S = 10.0


class ProviderUnavailableError(ProviderConnectionError):  # type: ignore[misc]
    """The database cannot be reached right now (503: try again later)."""

    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_msg = "The database is not reachable right now; try again shortly."


def _config_error(message: str) -> ProviderGenericError:
    # A generated configuration that the provider refuses is a bug: log it,
    # the client only sees pygeoapi's generic message.
    LOGGER.error("bad sdi provider configuration: %s", message)
    return ProviderGenericError(f"Bad sdi provider configuration: {message}")


class VersionedFeatureProvider(BaseProvider):  # type: ignore[misc]
    """Features of ``sdi_data.<table>`` as they were in one version."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        """Read the provider definition (cheap: pygeoapi does this per request)."""
        super().__init__(provider_def)
        data = self.data
        if not isinstance(data, dict):
            raise _config_error("data must be a mapping")
        table = data.get("table")
        version = data.get("version")
        srid = data.get("srid")
        fields = data.get("fields") or {}
        if not isinstance(table, str) or not _SLUG.match(table):
            raise _config_error(f"data.table {table!r} is not a layer id")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _config_error(f"data.version {version!r} is not a version number")
        if not isinstance(srid, int) or isinstance(srid, bool):
            raise _config_error(f"data.srid {srid!r} is not an SRID")
        if not isinstance(fields, dict):
            raise _config_error("data.fields must be a mapping")
        self.id_field = provider_def.get("id_field") or "_sdi_fid"
        self.storage_crs_uri: str = provider_def.get("storage_crs", DEFAULT_STORAGE_CRS)
        time_field = provider_def.get("time_field")
        if time_field is not None and time_field not in fields:
            raise _config_error(f"time_field {time_field!r} is not one of the fields")
        # A copy per instance: pygeoapi edits the dicts it is given (OpenAPI).
        self._fields = {
            str(name): dict(spec or {"type": "string"}) for name, spec in fields.items()
        }
        self.layer = LayerTable(
            table=table,
            version=version,
            srid=srid,
            fields=tuple(self._fields),
            time_field=time_field,
            numbers=frozenset(
                n for n, spec in self._fields.items() if spec.get("type") == "number"
            ),
        )

    # -- pygeoapi's provider interface --------------------------------------
    def get_fields(self) -> dict[str, dict[str, Any]]:
        """The published attributes and their JSON Schema types (from the config)."""
        return self._fields

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        crs_transform_spec: CrsTransformSpec | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A page of features (GeoJSON FeatureCollection dict) or just the count."""
        if resulttype not in ("results", "hits"):
            raise ProviderInvalidQueryError(
                user_msg="resulttype must be 'results' or 'hits'."
            )
        request = self._feature_query(
            offset=offset,
            limit=limit,
            bbox=bbox or [],
            datetime_=datetime_,
            properties=properties or [],
            sortby=sortby or [],
            select_properties=select_properties or [],
            skip_geometry=bool(skip_geometry),
            crs_transform_spec=crs_transform_spec,
        )
        if filterq is not None:
            request.condition = self._condition(filterq)
        response: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        if resulttype == "hits":
            response["numberMatched"] = self._count(request)
            response["numberReturned"] = 0
            return response
        statement, params = features_sql(self.layer, request)
        features = [json.loads(row[1]) for row in self._fetch(statement, params)]
        returned = len(features)
        response["features"] = features
        if self.count:
            if returned < request.limit and (returned > 0 or request.offset == 0):
                # The last page: the total is known without counting.
                response["numberMatched"] = request.offset + returned
            else:
                response["numberMatched"] = self._count(request)
        response["numberReturned"] = returned
        return response

    def get(
        self,
        identifier: Any,
        crs_transform_spec: CrsTransformSpec | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One feature by id; ``ProviderItemNotFoundError`` (404) if not in it."""
        text = str(identifier)
        if not _FID.match(text):
            raise ProviderItemNotFoundError(user_msg=f"No feature {text!r} here.")
        statement, params = feature_sql(
            self.layer, int(text), self._output(crs_transform_spec)
        )
        rows = self._fetch(statement, params)
        if not rows:
            raise ProviderItemNotFoundError(user_msg=f"No feature {text!r} here.")
        feature: dict[str, Any] = json.loads(rows[0][0])
        return feature

    def __repr__(self) -> str:
        return f"<VersionedFeatureProvider> {self.layer.table} v{self.layer.version}"

    # -- request validation --------------------------------------------------
    def _output(self, spec: CrsTransformSpec | None) -> OutputCrs:
        try:
            return output_crs(spec, self.storage_crs_uri, self.layer.srid)
        except ValueError as exc:
            raise ProviderInvalidQueryError(user_msg=str(exc)) from exc

    def _feature_query(
        self,
        *,
        offset: Any,
        limit: Any,
        bbox: Sequence[Any],
        datetime_: str | None,
        properties: Sequence[tuple[str, str]],
        sortby: Sequence[dict[str, str]],
        select_properties: Sequence[str],
        skip_geometry: bool,
        crs_transform_spec: CrsTransformSpec | None,
    ) -> FeatureQuery:
        if not isinstance(offset, int) or offset < 0:
            raise ProviderInvalidQueryError(user_msg="offset must be 0 or more.")
        if not isinstance(limit, int) or limit < 1:
            raise ProviderInvalidQueryError(user_msg="limit must be 1 or more.")
        request = FeatureQuery(
            output=self._output(crs_transform_spec),
            offset=offset,
            limit=limit,
            skip_geometry=skip_geometry,
        )
        request.envelopes = self._envelopes(bbox)
        for name, value in properties:
            self._check_field(name, "property filter")
            request.equals.append((name, str(value)))
        for key in sortby:
            name = key.get("property", "")
            self._check_field(name, "sortby")
            request.sortby.append((name, key.get("order") == "-"))
        if select_properties:
            wanted = set(select_properties)
            for name in wanted:
                self._check_field(name, "properties")
            request.select = tuple(n for n in self.layer.fields if n in wanted)
        if datetime_:
            self._time(request, datetime_)
        return request

    def _condition(self, node: Any) -> Condition:
        """A CQL2 filter pygeoapi parsed (its geometries in the storage CRS)."""
        if not isinstance(node, pgf_ast.Node):
            raise ProviderInvalidQueryError(user_msg="The filter is not valid CQL2.")
        fields, srid = self._fields, self.layer.srid
        flip = northing_first(self.storage_crs_uri)

        def condition(params: Params) -> psycopg.sql.Composable:
            try:
                return filter_sql(
                    node,
                    fields=fields,
                    srid=srid,
                    params=params,
                    filter_srid=srid,
                    flip=flip,
                )
            except Cql2Error as exc:
                raise ProviderInvalidQueryError(user_msg=exc.message) from exc

        return condition

    def _check_field(self, name: str, where: str) -> None:
        if name not in self._fields:
            raise ProviderInvalidQueryError(
                user_msg=f"Unknown property {name!r} in {where}; see the queryables."
            )

    def _envelopes(
        self, bbox: Sequence[Any]
    ) -> list[tuple[float, float, float, float]]:
        if not bbox:
            return []
        if len(bbox) not in (4, 6):
            raise ProviderInvalidQueryError(
                user_msg="bbox takes 4 numbers (minx,miny,maxx,maxy) or 6 (with z)."
            )
        try:
            values = [float(v) for v in bbox]
        except (TypeError, ValueError) as exc:
            raise ProviderInvalidQueryError(
                user_msg="bbox values must be numbers."
            ) from exc
        if not all(math.isfinite(v) for v in values):
            raise ProviderInvalidQueryError(user_msg="bbox values must be finite.")
        if len(values) == 6:
            values = [values[0], values[1], values[3], values[4]]
        minx, miny, maxx, maxy = values
        if output_crs(None, self.storage_crs_uri, self.layer.srid).flip:
            # pygeoapi hands the bbox over in the storage CRS's axis order.
            minx, miny, maxx, maxy = miny, minx, maxy, maxx
        if miny > maxy:
            raise ProviderInvalidQueryError(user_msg="bbox miny is above maxy.")
        if minx > maxx:
            if self.layer.srid != 4326:
                raise ProviderInvalidQueryError(user_msg="bbox minx is beyond maxx.")
            # Across the antimeridian: two boxes.
            return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
        return [(minx, miny, maxx, maxy)]

    def _time(self, request: FeatureQuery, value: str) -> None:
        if self.layer.time_field is None:
            raise ProviderInvalidQueryError(
                user_msg="This collection has no time attribute to filter on."
            )
        if "/" in value:
            start, _, end = value.partition("/")
            request.time_range = (
                None if start in ("", "..") else start,
                None if end in ("", "..") else end,
            )
        else:
            request.time_instant = value

    # -- database access -----------------------------------------------------
    def _count(self, request: FeatureQuery) -> int:
        statement, params = count_sql(self.layer, request)
        rows = self._fetch(statement, params)
        return int(rows[0][0]) if rows else 0

    def _fetch(self, statement: Statement, params: Params) -> list[Any]:
        """Run one statement; database trouble becomes a pygeoapi provider error."""
        try:
            with get_pool().connection(timeout=_POOL_TIMEOUT_S) as conn:
                return conn.execute(statement, params).fetchall()
        except PoolTimeout as exc:
            LOGGER.error("no database connection for %s: %s", self.layer.table, exc)
            raise ProviderUnavailableError() from exc
        except pg_errors.DataError as exc:
            # A request value the column's type refuses (floors=abc, a bad date).
            detail = exc.diag.message_primary or str(exc)
            raise ProviderInvalidQueryError(
                user_msg=f"A parameter value does not fit the attribute: {detail}"
            ) from exc
        except pg_errors.UndefinedTable as exc:
            LOGGER.error("layer table sdi_data.%s is missing", self.layer.table)
            raise ProviderQueryError(
                user_msg="This collection's data is missing; the administrators "
                "have been told."
            ) from exc
        except psycopg.OperationalError as exc:
            LOGGER.error("database unreachable: %s", exc)
            raise ProviderUnavailableError() from exc
        except psycopg.Error as exc:
            LOGGER.exception("query on sdi_data.%s failed", self.layer.table)
            raise ProviderQueryError() from exc
