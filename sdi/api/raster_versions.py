"""``version=N`` on raster coverages and map tiles.

A raster layer's coverage provider definition (``sdi.publish.rasters``) is
the published version's; ``options.versions`` holds each served version's
COG path and grid. :func:`definition_for` returns the definition of the
version a request names, after the one version parser
(:mod:`sdi.api.versions`): bad syntax 400, unknown 404, withdrawn or rolled
back 410. Responses for an explicit version are cached like vector versions
(:func:`sdi.api.caching.version_cache_control`): a version's COG never changes.
"""

from __future__ import annotations

from typing import Any

from sdi.api.versions import VersionRules, requested_version

__all__ = ["definition_for", "raster_rules"]


def raster_rules(slug: str, definition: dict[str, Any]) -> VersionRules:
    """The version rules of a raster collection's coverage provider."""
    options = definition.get("options") or {}
    published = int(options.get("version") or 0)
    served = (int(n) for n in (options.get("versions") or {}))
    return VersionRules.from_config(slug, published, served, options)


def definition_for(
    slug: str, definition: dict[str, Any], params: Any
) -> tuple[dict[str, Any], bool]:
    """The provider definition of the version ``params`` name, and whether
    one was named; VersionError (400/404/410) for one that cannot be served."""
    number, explicit = requested_version(raster_rules(slug, definition), params)
    options = definition.get("options") or {}
    if not explicit or number == int(options.get("version") or 0):
        return definition, explicit
    served = (options.get("versions") or {})[str(number)]
    return (
        definition
        | {
            "data": served["data"],
            "options": options | {"version": number, "raster": served["raster"]},
        },
        True,
    )
