"""Publish, roll back, unpublish: the registry change, then the generated files.

One code path for the admin pages, the JSON API and the CLI. The registry
call moves the layer's published-version pointer and bumps the publication
generation in one transaction (running APIs follow it within a second);
``collections/*.yml`` are then rewritten as readable copies. Permission
checks are the caller's (``sdi.registry.permissions``), since the CLI runs
as the operator.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import Connection

from sdi import registry
from sdi.errors import BadInputError, NotFoundError
from sdi.publish.files import write_collections
from sdi.registry.models import Layer, User
from sdi.registry.withdrawal import Withdrawal
from sdi.settings import Settings

__all__ = [
    "previous_version",
    "publish_layer",
    "rollback",
    "unpublish_layer",
    "withdraw_version",
]

LOGGER = logging.getLogger(__name__)


def _write_files(conn: Connection[Any], settings: Settings) -> None:
    # The registry is the truth and is already committed; a failure to write
    # the readable copies must not turn a done publication into an error.
    try:
        write_collections(conn, settings)
    except OSError as exc:
        LOGGER.error(
            "published, but collections/ was not rewritten (%s): run `sdi publish`",
            exc,
        )


def publish_layer(
    conn: Connection[Any],
    settings: Settings,
    slug: str,
    version: int | None = None,
    *,
    actor: str = "cli",
    user_id: int | None = None,
) -> Layer:
    """Publish ``version`` of the layer (default: its latest)."""
    layer = registry.publish(conn, slug, version, actor=actor, user_id=user_id)
    _write_files(conn, settings)
    return layer


def previous_version(conn: Connection[Any], layer: Layer) -> int:
    """The version before the published one; BadInputError if there is none."""
    if layer.published_version is None:
        raise BadInputError(
            f"Layer {layer.slug!r} is not published; nothing to roll back."
        )
    earlier = [
        v.number
        for v in registry.list_versions(conn, layer.id)
        if v.number < layer.published_version and not v.withdrawn
    ]
    if not earlier:
        raise BadInputError(
            f"Version {layer.published_version} is the first version of "
            f"{layer.slug!r}; there is nothing earlier to roll back to."
        )
    return max(earlier)


def rollback(
    conn: Connection[Any],
    settings: Settings,
    slug: str,
    version: int | None = None,
    *,
    actor: str = "cli",
    user_id: int | None = None,
) -> Layer:
    """Publish an earlier version (default: the one before the published one)."""
    layer = registry.get_layer(conn, slug)
    if version is None:
        version = previous_version(conn, layer)
    elif layer.published_version is not None and version >= layer.published_version:
        raise BadInputError(
            f"Rolling back goes to a version before the published one "
            f"({layer.published_version}); to publish version {version}, publish it."
        )
    try:
        registry.get_version(conn, layer.id, version)
    except NotFoundError:
        raise NotFoundError(f"Layer {slug!r} has no version {version}.") from None
    return publish_layer(conn, settings, slug, version, actor=actor, user_id=user_id)


def unpublish_layer(
    conn: Connection[Any],
    settings: Settings,
    slug: str,
    *,
    actor: str = "cli",
    user_id: int | None = None,
) -> Layer:
    """Withdraw the layer from the API; its versions stay."""
    layer = registry.unpublish(conn, slug, actor=actor, user_id=user_id)
    _write_files(conn, settings)
    return layer


def withdraw_version(
    conn: Connection[Any],
    settings: Settings,
    slug: str,
    number: int,
    reason: str,
    *,
    by: User | None,
    actor: str = "cli",
) -> Withdrawal:
    """Take a version down everywhere (:func:`sdi.registry.withdraw_version`).

    After the registry change commits (rows purged, the layer published at
    its newest earlier served version if this one was published, generation
    moved), a raster version's COG is deleted and ``collections/`` rewritten.
    """
    done = registry.withdraw_version(conn, slug, number, reason, by=by, actor=actor)
    raster = done.version.schema.get("raster")
    if isinstance(raster, dict) and isinstance(raster.get("file"), str):
        path = settings.raster_dir / raster["file"]
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            LOGGER.error(
                "%s v%d is withdrawn but %s could not be deleted (%s): delete it",
                slug,
                number,
                path,
                exc,
            )
    _write_files(conn, settings)
    return done
