"""``/collections`` and ``/collections/{id}``: pygeoapi's documents plus sdi's facts.

pygeoapi builds the collection documents (links, extents, CRS, item types,
HTML pages). sdi adds, in the JSON, what its configuration knows and
pygeoapi's schema has no place for:

* ``attribution``: whom to credit (the owning department and the licence's
  attribution sentence), in the request's language;
* for vector layers, ``publishedVersion`` and ``versions`` (number, date,
  feature count): the versions clients may ask for with ``?version=N`` on
  items, features and tiles (``rel="version-history"`` links to the list).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pygeoapi.api as core_api
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_JSON
from pygeoapi.util import to_json

from sdi.api.layers import VectorLayer, vector_layer
from sdi.api.runtime import Content

__all__ = ["describe_collections"]

Result = tuple[dict[str, Any], int, Content]


def _versions(layer: VectorLayer) -> list[dict[str, Any]]:
    return [
        {"version": v.number, "created": v.created, "numberOfFeatures": v.features}
        for v in layer.versions.values()
    ]


def _enrich(api: API, request: APIRequest, collection: dict[str, Any]) -> None:
    resource = api.config["resources"].get(collection.get("id"), {})
    attribution = resource.get("attribution")
    if attribution:
        collection["attribution"] = l10n.translate(attribution, request.locale)
    layer = vector_layer(api, str(collection.get("id")))
    if layer is not None:
        collection["publishedVersion"] = layer.version
        collection["versions"] = _versions(layer)


def describe_collections(
    api: API, request: APIRequest, dataset: str | None = None
) -> Result:
    """pygeoapi's collection list or document, with attribution and versions."""
    headers, status, content = core_api.describe_collections(api, request, dataset)
    if status != HTTPStatus.OK or request.format not in (None, F_JSON):
        return headers, status, content
    if not isinstance(content, str | bytes):
        return headers, status, content
    try:
        body = json.loads(content)
    except ValueError:
        return headers, status, content
    if dataset is None:
        for collection in body.get("collections", []):
            _enrich(api, request, collection)
    else:
        _enrich(api, request, body)
    return headers, status, to_json(body, api.pretty_print)
