"""Layers: registration, metadata, and the published-version pointer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection, errors
from psycopg.rows import class_row

from sdi.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
)
from sdi.registry import audit, permissions
from sdi.registry.models import Agency, Layer, User
from sdi.registry.publication import bump_generation

__all__ = [
    "LayerInput",
    "create_layer",
    "get_layer",
    "list_layers",
    "publish",
    "set_kind",
    "unpublish",
    "update_layer",
]

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_INSERT = """
INSERT INTO sdi.layers (slug, agency_id, kind, title_en, title_zh, abstract_en,
    abstract_zh, keywords, theme, contact, update_frequency, licence_id, visibility,
    key_column, time_column)
VALUES (%(slug)s, %(agency_id)s, %(kind)s, %(title_en)s, %(title_zh)s, %(abstract_en)s,
    %(abstract_zh)s, %(keywords)s, %(theme)s, %(contact)s, %(update_frequency)s,
    %(licence_id)s, %(visibility)s, %(key_column)s, %(time_column)s)
RETURNING *
"""
_BY_SLUG = "SELECT * FROM sdi.layers WHERE slug = %s"
_BY_SLUG_FOR_UPDATE = "SELECT * FROM sdi.layers WHERE slug = %s FOR UPDATE"
_LIST = """
SELECT l.* FROM sdi.layers l
WHERE (%(agency_id)s::int IS NULL OR l.agency_id = %(agency_id)s)
  AND (NOT %(published)s OR l.published_version IS NOT NULL)
ORDER BY l.slug
"""
_SET_PUBLISHED = """
UPDATE sdi.layers SET published_version = %s, updated_at = now()
WHERE id = %s RETURNING *
"""
_SET_KIND = """
UPDATE sdi.layers SET kind = %(kind)s, updated_at = now()
WHERE id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM sdi.layer_versions WHERE layer_id = %(id)s)
RETURNING *
"""
_VERSION_EXISTS = """
SELECT withdrawn_at IS NOT NULL FROM sdi.layer_versions
WHERE layer_id = %s AND number = %s
"""
_LATEST_VERSION = """
SELECT max(number) FROM sdi.layer_versions
WHERE layer_id = %s AND withdrawn_at IS NULL
"""
_FIRST_PUBLISHED = """
UPDATE sdi.layer_versions SET first_published_at = now()
WHERE layer_id = %s AND number = %s AND first_published_at IS NULL
"""
_UPDATABLE = (
    "title_en",
    "title_zh",
    "abstract_en",
    "abstract_zh",
    "keywords",
    "theme",
    "contact",
    "update_frequency",
    "licence_id",
    "visibility",
    "key_column",
    "time_column",
)
_UPDATE = """
UPDATE sdi.layers SET title_en = %(title_en)s, title_zh = %(title_zh)s,
    abstract_en = %(abstract_en)s, abstract_zh = %(abstract_zh)s,
    keywords = %(keywords)s, theme = %(theme)s, contact = %(contact)s,
    update_frequency = %(update_frequency)s, licence_id = %(licence_id)s,
    visibility = %(visibility)s, key_column = %(key_column)s,
    time_column = %(time_column)s, updated_at = now()
WHERE id = %(id)s RETURNING *
"""


@dataclass
class LayerInput:
    """What an agency says about a layer when registering it."""

    slug: str
    title_en: str
    licence_id: int
    title_zh: str = ""
    abstract_en: str = ""
    abstract_zh: str = ""
    keywords: list[str] = field(default_factory=list)
    theme: str = ""
    contact: str = ""
    update_frequency: str = ""
    visibility: str = "public"
    key_column: str | None = None
    time_column: str | None = None
    kind: str = "vector"


#: Collection ids sdi uses itself ("catalog" is the records catalogue).
_RESERVED = frozenset({"collections", "catalogue", "catalog"})


def _validate(data: LayerInput) -> None:
    if not SLUG.match(data.slug):
        raise BadInputError(
            f"Layer id {data.slug!r} must start with a letter and hold only lower-case "
            "letters, digits and underscores (at most 63), e.g. landsd_buildings."
        )
    if data.slug.startswith("sdi_") or data.slug in _RESERVED:
        raise BadInputError(f"Layer id {data.slug!r} is reserved.")
    if not data.title_en.strip():
        raise BadInputError("A layer needs an English title.")
    if data.visibility not in ("public", "restricted"):
        raise BadInputError("Visibility is 'public' or 'restricted'.")


def create_layer(
    conn: Connection[Any],
    agency: Agency,
    data: LayerInput,
    *,
    actor: str = "cli",
    user_id: int | None = None,
) -> Layer:
    """Register a new (empty, unpublished) layer owned by ``agency``."""
    _validate(data)
    params = {**data.__dict__, "agency_id": agency.id}
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Layer)) as cur:
            layer = cur.execute(_INSERT, params).fetchone()
            assert layer is not None
            audit.record(
                conn,
                "create",
                "layer",
                data.slug,
                actor=actor,
                user_id=user_id,
                details={"agency": agency.code, "title_en": data.title_en},
            )
    except errors.UniqueViolation as exc:
        raise ConflictError(f"A layer {data.slug!r} already exists.") from exc
    except errors.ForeignKeyViolation as exc:
        raise BadInputError("Unknown licence.") from exc
    return layer


def set_kind(conn: Connection[Any], layer: Layer, kind: str) -> Layer:
    """Make a layer without versions a ``vector`` or ``raster`` layer.

    A layer takes the kind of its first upload; once it has a version its kind
    is fixed (BadInputError).
    """
    if kind not in ("vector", "raster"):
        raise BadInputError("A layer is 'vector' or 'raster'.")
    if kind == layer.kind:
        return layer
    with conn.cursor(row_factory=class_row(Layer)) as cur:
        updated = cur.execute(_SET_KIND, {"kind": kind, "id": layer.id}).fetchone()
    if updated is None:
        held = "raster" if layer.kind == "raster" else "vector features"
        raise BadInputError(
            f"Layer {layer.slug!r} holds {held}; register a new layer for a "
            f"{kind} file."
        )
    return updated


def get_layer(conn: Connection[Any], slug: str, *, for_update: bool = False) -> Layer:
    """The layer ``slug``; NotFoundError if none. ``for_update`` locks its row."""
    query = _BY_SLUG_FOR_UPDATE if for_update else _BY_SLUG
    with conn.cursor(row_factory=class_row(Layer)) as cur:
        layer = cur.execute(query, (slug,)).fetchone()
    if layer is None:
        raise NotFoundError(f"No layer {slug!r}.")
    return layer


def list_layers(
    conn: Connection[Any], *, agency_id: int | None = None, published: bool = False
) -> list[Layer]:
    """Layers by slug, optionally one agency's or only the published ones."""
    with conn.cursor(row_factory=class_row(Layer)) as cur:
        cur.execute(_LIST, {"agency_id": agency_id, "published": published})
        return cur.fetchall()


def update_layer(
    conn: Connection[Any],
    slug: str,
    changes: dict[str, Any],
    *,
    actor: str = "cli",
    user_id: int | None = None,
    by: User | None = None,
) -> Layer:
    """Change a layer's metadata; unknown keys are refused.

    ``by``: the signed-in user doing it (the caller has checked EDIT_LAYER);
    changing the visibility also needs SET_VISIBILITY (agency admins), else
    ForbiddenError and nothing changes.
    """
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise BadInputError(f"Cannot change {', '.join(sorted(unknown))}.")
    if by is not None:
        actor, user_id = by.email, by.id
    with conn.transaction():
        layer = get_layer(conn, slug, for_update=True)
        merged = {k: getattr(layer, k) for k in _UPDATABLE} | changes
        _validate(LayerInput(slug=slug, **merged))
        may_set = by is None or permissions.can(
            by, permissions.Action.SET_VISIBILITY, agency_id=layer.agency_id
        )
        if merged["visibility"] != layer.visibility and not may_set:
            raise ForbiddenError(
                "Only an agency admin can make a layer public or restricted; "
                "the other changes were not saved either."
            )
        with conn.cursor(row_factory=class_row(Layer)) as cur:
            updated = cur.execute(_UPDATE, {**merged, "id": layer.id}).fetchone()
        assert updated is not None
        audit.record(
            conn,
            "update",
            "layer",
            slug,
            actor=actor,
            user_id=user_id,
            details={k: str(v) for k, v in changes.items()},
        )
        if layer.published_version is not None:
            bump_generation(conn)
    return updated


def publish(
    conn: Connection[Any],
    slug: str,
    version: int | None = None,
    *,
    actor: str = "cli",
    user_id: int | None = None,
) -> Layer:
    """Point the layer at ``version`` (default: its latest). Also how rollback works."""
    with conn.transaction():
        layer = get_layer(conn, slug, for_update=True)
        if version is None:
            row = conn.execute(_LATEST_VERSION, (layer.id,)).fetchone()
            version = row[0] if row else None
            if version is None:
                raise BadInputError(f"Layer {slug!r} has no version to publish yet.")
        else:
            found = conn.execute(_VERSION_EXISTS, (layer.id, version)).fetchone()
            if found is None:
                raise NotFoundError(f"Layer {slug!r} has no version {version}.")
            if found[0]:
                raise GoneError(
                    f"Version {version} of {slug!r} was withdrawn; it cannot be "
                    "published again."
                )
        conn.execute(_FIRST_PUBLISHED, (layer.id, version))
        with conn.cursor(row_factory=class_row(Layer)) as cur:
            updated = cur.execute(_SET_PUBLISHED, (version, layer.id)).fetchone()
        assert updated is not None
        action = (
            "rollback"
            if layer.published_version is not None and version < layer.published_version
            else "publish"
        )
        audit.record(
            conn,
            action,
            "layer",
            slug,
            actor=actor,
            user_id=user_id,
            details={"version": version, "previous": layer.published_version},
        )
        bump_generation(conn)
    return updated


def unpublish(
    conn: Connection[Any], slug: str, *, actor: str = "cli", user_id: int | None = None
) -> Layer:
    """Withdraw the layer from the API; its versions stay."""
    with conn.transaction():
        layer = get_layer(conn, slug, for_update=True)
        with conn.cursor(row_factory=class_row(Layer)) as cur:
            updated = cur.execute(_SET_PUBLISHED, (None, layer.id)).fetchone()
        assert updated is not None
        audit.record(
            conn,
            "unpublish",
            "layer",
            slug,
            actor=actor,
            user_id=user_id,
            details={"previous": layer.published_version},
        )
        bump_generation(conn)
    return updated
