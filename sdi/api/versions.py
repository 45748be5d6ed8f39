"""``version=N``: one parser for every route that serves a layer's data.

Items, feature by id, ``/changes`` (``from``/``to``), vector tiles, coverages
and map tiles all read the version through :func:`parse_version`, against a
layer's :class:`VersionRules` (from the configuration ``sdi.publish`` builds):

* not a number: 400;
* a served version (1..published, not withdrawn): that version;
* a withdrawn version: **410 Gone** with the date and the reason;
* a version above the published one that was published once (a ``next``
  link pinned to it before a roll back): **410 Gone** saying so;
* anything else, a draft above the published one included: 404.

410 answers carry a link (``Link`` header, and ``links`` in the OGC
exception JSON) to the same resource at the published version.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_HTML, F_JSON, FORMAT_TYPES

__all__ = [
    "LATEST_REL",
    "VersionError",
    "VersionRules",
    "Withdrawn",
    "error_result",
    "parse_version",
    "requested_version",
]

#: Link relation of the published version in a 410 (RFC 5829).
LATEST_REL = "latest-version"
_INTEGER = re.compile(r"^-?[0-9]{1,9}$")
#: Parameters that pin a request to a version or a page of one: dropped from
#: the link to the published version.
_PINNED = frozenset({"version", "offset", "after", "from", "to"})

Result = tuple[dict[str, Any], int, Any]


@dataclass(frozen=True)
class Withdrawn:
    """A version taken down: when and why (the reason is shown to everyone)."""

    number: int
    withdrawn: str
    reason: str


@dataclass(frozen=True)
class VersionRules:
    """Which versions of a layer are served, gone, or unknown."""

    slug: str
    published: int
    served: frozenset[int]
    withdrawn: Mapping[int, Withdrawn] = field(default_factory=dict)
    retired: frozenset[int] = frozenset()

    @classmethod
    def from_config(
        cls, slug: str, published: int, served: Any, data: Mapping[str, Any]
    ) -> VersionRules:
        """Rules from the ``withdrawn`` and ``retired`` entries of a provider's
        configuration (:func:`sdi.publish.resources.gone_versions`)."""
        withdrawn = {}
        for entry in data.get("withdrawn") or ():
            number = int(entry["number"])
            withdrawn[number] = Withdrawn(
                number, str(entry.get("withdrawn") or ""), str(entry.get("reason"))
            )
        return cls(
            slug=slug,
            published=published,
            served=frozenset(int(n) for n in served) | {published},
            withdrawn=withdrawn,
            retired=frozenset(int(n) for n in data.get("retired") or ()),
        )


class VersionError(Exception):
    """A version that cannot be served: status, OGC code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _gone(rules: VersionRules, number: int) -> VersionError | None:
    found = rules.withdrawn.get(number)
    if found is not None:
        day = found.withdrawn[:10] or "an earlier date"
        return VersionError(
            HTTPStatus.GONE,
            "Gone",
            f"Version {number} of collection {rules.slug!r} was withdrawn on "
            f"{day}: {found.reason.rstrip('.')}. Its data is no longer served; the "
            f"published version is {rules.published}.",
        )
    if number in rules.retired:
        return VersionError(
            HTTPStatus.GONE,
            "Gone",
            f"Version {number} of collection {rules.slug!r} is no longer served: "
            f"the collection was rolled back to version {rules.published}. Links "
            f"pinned to version {number} (such as next pages) stopped working; "
            "start again from the published version.",
        )
    return None


def parse_version(
    rules: VersionRules, raw: Any, *, name: str = "version", zero: bool = False
) -> int:
    """The version number ``raw`` names, or VersionError (400, 404 or 410).

    ``zero`` accepts 0, the empty layer before version 1 (``/changes?from=0``).
    """
    text = str(raw).strip()
    if not _INTEGER.match(text):
        raise VersionError(
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValue",
            f"{name} must be a version number (1 to {rules.published}), "
            f"not {text[:40]!r}.",
        )
    number = int(text)
    if number in rules.served or (zero and number == 0):
        return number
    gone = _gone(rules, number)
    if gone is not None:
        raise gone
    raise VersionError(
        HTTPStatus.NOT_FOUND,
        "NotFound",
        f"Collection {rules.slug!r} has no version {number}: versions 1 to "
        f"{rules.published} can be queried (see /collections/{rules.slug}/versions).",
    )


def requested_version(
    rules: VersionRules, params: Mapping[str, Any]
) -> tuple[int, bool]:
    """The ``version`` parameter's version (default: the published one) and
    whether the request named one."""
    raw = params.get("version")
    if raw is None or raw == "":
        return rules.published, False
    return parse_version(rules, raw), True


def published_href(api: API, request: APIRequest) -> str:
    """The request's resource at the published version (pinning dropped)."""
    kept = {k: v for k, v in request.params.items() if k not in _PINNED}
    query = urllib.parse.urlencode(kept)
    url = f"{api.base_url.rstrip('/')}/{request.path_info}"
    return f"{url}?{query}" if query else url


def error_result(
    api: API, request: APIRequest, exc: VersionError, *, html: bool = True
) -> Result:
    """The OGC exception for ``exc``; a 410 links to the published version."""
    headers = request.get_response_headers(**api.api_headers)
    headers.pop("ETag", None)
    headers.pop("Cache-Control", None)
    fmt = F_HTML if html and request.format == F_HTML else F_JSON
    headers["Content-Type"] = FORMAT_TYPES[fmt]
    if exc.status != HTTPStatus.GONE:
        return api.get_exception(exc.status, headers, fmt, exc.code, exc.message)  # type: ignore[no-any-return]
    href = published_href(api, request)
    headers["Link"] = f'<{href}>; rel="{LATEST_REL}"'
    if fmt == F_HTML:
        return api.get_exception(  # type: ignore[no-any-return]
            exc.status, headers, fmt, exc.code, f"{exc.message} {href}"
        )
    body = {
        "code": exc.code,
        "type": exc.code,
        "description": exc.message,
        "links": [
            {
                "rel": LATEST_REL,
                "type": FORMAT_TYPES[F_JSON],
                "title": "The published version",
                "href": href,
            }
        ],
    }
    return headers, exc.status, json.dumps(body, ensure_ascii=False)
