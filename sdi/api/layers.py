"""What sdi's own handlers need to know about a published vector layer.

Read from the ``API`` object's configuration (built by ``sdi.publish`` from
the registry), parsed once per ``API`` object and kept beside it: handlers on
the hot paths (items, feature by id, vector tiles) never touch the registry
and never reflect a table's schema per request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from pygeoapi.api import API

from sdi.api.versions import VersionRules
from sdi.providers.crs import CRS84
from sdi.publish.resources import PROVIDER_NAME

__all__ = ["LayerVersion", "VectorLayer", "vector_layer", "vector_layers"]


@dataclass(frozen=True)
class LayerVersion:
    """One queryable version of a layer: number, size, date, attribute names."""

    number: int
    features: int
    created: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class VectorLayer:
    """A published vector layer as the current configuration serves it."""

    slug: str
    table: str
    srid: int
    storage_crs: str
    #: Output CRS URIs offered (OGC API - Features Part 2).
    crs: tuple[str, ...]
    #: Attribute name -> JSON Schema of the published version, in file order.
    fields: dict[str, dict[str, Any]]
    #: The published version (served when a request names none).
    version: int
    #: Versions 1..published by number (the ones clients may query).
    versions: dict[int, LayerVersion]
    time_field: str | None
    title_field: str | None
    #: The collection's links from the configuration (licence, author, ...).
    links: tuple[dict[str, str], ...]
    title: Any
    #: Changes whenever anything the collection's responses depend on changes
    #: (version, attributes, licence links): part of every ETag.
    revision: str
    #: Which versions ``version=`` serves, which are gone (410), for all routes.
    rules: VersionRules
    resource: dict[str, Any] = field(repr=False, compare=False)

    @property
    def licence_links(self) -> list[dict[str, str]]:
        """The ``rel="license"`` links of the collection."""
        return [dict(link) for link in self.links if link.get("rel") == "license"]

    def fields_of(self, version: int) -> dict[str, dict[str, Any]]:
        """The attributes (with types) version ``version`` has."""
        names = self.versions[version].fields if version in self.versions else ()
        if not names:
            return dict(self.fields)
        return {n: self.fields.get(n, {"type": "string"}) for n in names}


_CACHE: weakref.WeakKeyDictionary[API, dict[str, VectorLayer]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def _parse(slug: str, resource: dict[str, Any]) -> VectorLayer | None:
    providers = resource.get("providers") or []
    provider = next(
        (
            p
            for p in providers
            if p.get("type") == "feature" and p.get("name") == PROVIDER_NAME
        ),
        None,
    )
    if provider is None:
        return None
    data = provider["data"]
    fields = {str(k): dict(v or {}) for k, v in (data.get("fields") or {}).items()}
    versions: dict[int, LayerVersion] = {}
    for entry in data.get("versions") or []:
        number = int(entry["number"])
        versions[number] = LayerVersion(
            number=number,
            features=int(entry.get("features") or 0),
            created=str(entry.get("created") or ""),
            fields=tuple(entry.get("fields") or ()),
        )
    version = int(data["version"])
    if version not in versions:
        versions[version] = LayerVersion(version, 0, "", tuple(fields))
    digest = hashlib.sha256(
        json.dumps(resource, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return VectorLayer(
        slug=slug,
        table=str(data["table"]),
        srid=int(data["srid"]),
        storage_crs=str(provider.get("storage_crs") or CRS84),
        crs=tuple(provider.get("crs") or (CRS84,)),
        fields=fields,
        version=version,
        versions=dict(sorted(versions.items())),
        time_field=provider.get("time_field"),
        title_field=provider.get("title_field"),
        links=tuple(dict(link) for link in resource.get("links") or ()),
        title=resource.get("title"),
        revision=digest,
        rules=VersionRules.from_config(slug, version, versions, data),
        resource=resource,
    )


def vector_layers(api: API) -> dict[str, VectorLayer]:
    """Every vector layer ``api`` serves through sdi's provider, by collection id."""
    cached = _CACHE.get(api)
    if cached is not None:
        return cached
    with _LOCK:
        cached = _CACHE.get(api)
        if cached is None:
            cached = {}
            for slug, resource in (api.config.get("resources") or {}).items():
                if resource.get("type") != "collection":
                    continue
                layer = _parse(slug, resource)
                if layer is not None:
                    cached[slug] = layer
            _CACHE[api] = cached
    return cached


def vector_layer(api: API, collection_id: str) -> VectorLayer | None:
    """The vector layer behind ``collection_id``, None if it is not one of ours."""
    return vector_layers(api).get(collection_id)
