"""``/conformance``: exactly the classes sdi's routes pass, per kind of collection.

pygeoapi derives its list from the provider types in the configuration and
includes classes sdi does not serve (Features Part 4 transactions, advanced
property roles, Coverages datetime for rasters without a time axis). This
list is written out instead; each class named here is exercised by the
tests named beside it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_HTML
from pygeoapi.util import render_j2_template, to_json

from sdi.api.layers import vector_layers

__all__ = ["conformance", "conformance_classes"]

_COMMON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf"
_COLLECTIONS = "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf"
_FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_CRS = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf"
_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
_SCHEMAS = "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
_RECORDS = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"
_COVERAGES = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf"

#: Landing page, collections, JSON, HTML, OpenAPI (tests/api/test_api.py).
COMMON = (
    f"{_COMMON}/core",
    f"{_COMMON}/landing-page",
    f"{_COMMON}/json",
    f"{_COMMON}/html",
    f"{_COMMON}/oas30",
    f"{_COLLECTIONS}/collections",
)
#: Vector layers (tests/api/test_items.py, test_api.py, tests/providers/test_cql2.py,
#: tests/interop/).
FEATURES = (
    f"{_FEATURES}/core",
    f"{_FEATURES}/oas30",
    f"{_FEATURES}/html",
    f"{_FEATURES}/geojson",
    f"{_CRS}/crs",
    f"{_FILTER}/queryables",
    f"{_FILTER}/queryables-query-parameters",
    f"{_FILTER}/filter",
    f"{_FILTER}/features-filter",
    f"{_SCHEMAS}/schemas",
    f"{_CQL2}/cql2-text",
    f"{_CQL2}/cql2-json",
    f"{_CQL2}/basic-cql2",
    f"{_CQL2}/advanced-comparison-operators",
    f"{_CQL2}/case-insensitive-comparison",
    f"{_CQL2}/basic-spatial-functions",
    f"{_CQL2}/basic-spatial-functions-plus",
    f"{_CQL2}/spatial-functions",
    f"{_CQL2}/temporal-functions",
    f"{_CQL2}/property-property",
    f"{_CQL2}/arithmetic",
)
#: Vector tiles of vector layers (tests/api/test_vector_tiles.py).
VECTOR_TILES = (
    f"{_TILES}/core",
    f"{_TILES}/tileset",
    f"{_TILES}/tilesets-list",
    f"{_TILES}/geodata-tilesets",
    f"{_TILES}/mvt",
    f"{_TILES}/oas30",
)
#: The catalogue (tests/api/test_records.py).
RECORDS = (
    f"{_RECORDS}/core",
    f"{_RECORDS}/sorting",
    f"{_RECORDS}/opensearch",
    f"{_RECORDS}/json",
    f"{_RECORDS}/html",
)
#: Raster layers (tests/rasters/).
RASTERS = (
    f"{_COVERAGES}/core",
    f"{_COVERAGES}/oas30",
    f"{_COVERAGES}/html",
    f"{_COVERAGES}/geodata-coverage",
    f"{_COVERAGES}/coverage-subset",
    f"{_COVERAGES}/coverage-rangesubset",
    f"{_COVERAGES}/coverage-bbox",
    f"{_COVERAGES}/coverage-scaling",
    f"{_TILES}/core",
    f"{_TILES}/tileset",
    f"{_TILES}/tilesets-list",
    f"{_TILES}/geodata-tilesets",
    f"{_TILES}/png",
)


def _provider_types(api: API) -> set[str]:
    types: set[str] = set()
    for resource in api.config.get("resources", {}).values():
        for provider in resource.get("providers") or []:
            types.add(str(provider.get("type")))
    return types


def conformance_classes(api: API) -> list[str]:
    """The conformance classes of what ``api`` serves, sorted."""
    classes = set(COMMON)
    if vector_layers(api):
        classes.update(FEATURES)
        classes.update(VECTOR_TILES)
    types = _provider_types(api)
    if "record" in types:
        classes.update(RECORDS)
    if "coverage" in types:
        classes.update(RASTERS)
    return sorted(classes)


def conformance(api: API, request: APIRequest) -> tuple[dict[str, Any], int, str]:
    """``/conformance`` as JSON or HTML."""
    body = {"conformsTo": conformance_classes(api)}
    headers = request.get_response_headers(**api.api_headers)
    if request.format == F_HTML:
        html = render_j2_template(
            api.tpl_config,
            api.config["server"]["templates"],
            "conformance.html",
            body,
            request.locale,
        )
        return headers, HTTPStatus.OK, html
    return headers, HTTPStatus.OK, to_json(body, api.pretty_print)
