"""``/collections/{id}/versions``: the versions of a vector layer clients may query.

Versions 1..published that are served, newest first, each with links to its
features and to its changes from the served version before it. Withdrawn
versions are listed apart, in ``withdrawnVersions`` (number and date, not
the reason): a client holding a link to one learns it was taken down on
purpose, and why the changes of the next version start from the one before
the gap; the reason stays in the 410 answer for the version itself, where a
reader who followed such a link needs it. ``versions`` keeps offering only
what can be fetched, so clients iterating it never meet a 410.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_JSON, FORMAT_TYPES

from sdi.api.features import (
    GEOJSON,
    Result,
    _cache_headers,
    _dumps,
    _etag,
    _layer_or_404,
    _refuse,
    _RequestError,
)
from sdi.api.layers import VectorLayer

__all__ = ["get_versions"]


def _entry(base: str, layer: VectorLayer, number: int, before: int) -> dict[str, Any]:
    entry = layer.versions[number]
    return {
        "version": number,
        "created": entry.created or None,
        "numberOfFeatures": entry.features,
        "published": number == layer.version,
        "links": [
            {
                "rel": "items",
                "type": GEOJSON,
                "title": f"Features of version {number}",
                "href": f"{base}/items?version={number}",
            },
            {
                "rel": "changes",
                "type": GEOJSON,
                "title": f"Changes from version {before} to {number}",
                "href": f"{base}/changes?from={before}&to={number}",
            },
        ],
    }


def get_versions(api: API, request: APIRequest, dataset: str) -> Result:
    """``/collections/{dataset}/versions``: the versions clients may query."""
    try:
        layer = _layer_or_404(api, dataset)
    except _RequestError as exc:
        return _refuse(api, request, exc)
    headers = request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    etag = _etag(layer, layer.version, False, "versions", request.locale)
    cached = _cache_headers(headers, request, etag, False)
    if cached is not None:
        return cached
    base = f"{api.get_collections_url()}/{dataset}"
    numbers = sorted(layer.versions)
    versions = [
        _entry(base, layer, number, numbers[i - 1] if i else 0)
        for i, number in reversed(list(enumerate(numbers)))
    ]
    title = l10n.translate(layer.title, request.locale)
    body = {
        "collection": dataset,
        "title": title,
        "publishedVersion": layer.version,
        "versions": versions,
        "withdrawnVersions": [
            {"version": w.number, "withdrawn": w.withdrawn or None}
            for w in sorted(layer.rules.withdrawn.values(), key=lambda w: -w.number)
        ],
        "links": [
            {
                "rel": "self",
                "type": FORMAT_TYPES[F_JSON],
                "title": "This document as JSON",
                "href": f"{base}/versions",
            },
            {
                "rel": "collection",
                "type": FORMAT_TYPES[F_JSON],
                "title": title,
                "href": base,
            },
            *layer.licence_links,
        ],
    }
    return headers, HTTPStatus.OK, _dumps(body)
