"""What a reviewer sees of a version before publishing it, and a layer's history.

One JSON-ready shape for the admin pages and the JSON API: counts, extent,
schema and its change against the previous version, diff stats, repairs; and
the layer's history from the audit log (who uploaded, published, rolled back).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from sdi.registry import audit
from sdi.registry.models import Layer, Version

__all__ = [
    "HISTORY_ACTIONS",
    "layer_history",
    "schema_change",
    "uploaders",
    "version_summary",
]

#: Audit actions shown in a layer's history.
HISTORY_ACTIONS = (
    "create",
    "update",
    "upload",
    "ingest",
    "publish",
    "rollback",
    "unpublish",
    "withdraw",
)


def _field_types(version: Version | None) -> dict[str, str]:
    if version is None:
        return {}
    return {f["name"]: f["type"] for f in version.schema.get("fields", [])}


def schema_change(previous: Version | None, current: Version) -> dict[str, Any]:
    """Fields added, removed and retyped from ``previous`` to ``current``.

    Against no previous version every field counts as added. Lists keep the
    current (or, for removed fields, the previous) version's field order.
    """
    old, new = _field_types(previous), _field_types(current)
    return {
        "added": [{"name": n, "type": t} for n, t in new.items() if n not in old],
        "removed": [{"name": n, "type": t} for n, t in old.items() if n not in new],
        "retyped": [
            {"name": n, "from": old[n], "to": t}
            for n, t in new.items()
            if n in old and old[n] != t
        ],
        "geometry_type": (
            None
            if previous is None or previous.geometry_type == current.geometry_type
            else {"from": previous.geometry_type, "to": current.geometry_type}
        ),
    }


def version_summary(
    layer: Layer,
    version: Version,
    previous: Version | None = None,
    *,
    uploaded_by: str | None = None,
) -> dict[str, Any]:
    """A version as the admin pages and the JSON API show it.

    ``previous`` is the version before it (for the schema change);
    ``uploaded_by`` who uploaded it, when known.
    """
    diff = version.diff
    return {
        "layer": layer.slug,
        "number": version.number,
        "created_at": version.created_at.isoformat(),
        "uploaded_by": uploaded_by,
        "published": layer.published_version == version.number,
        "source": {
            "filename": version.source_filename,
            "format": version.source_format,
            "layer": version.source_layer,
            "crs": version.source_crs,
            "encoding": version.source_encoding,
            "sha256": version.source_sha256,
        },
        "feature_count": version.feature_count,
        "geometry_type": version.geometry_type,
        "extent": version.extent,
        "fields": version.schema.get("fields", []),
        "schema_change": schema_change(previous, version),
        "diff": {
            "added": int(diff.get("added", 0)),
            "changed": int(diff.get("changed", 0)),
            "removed": int(diff.get("removed", 0)),
            "unchanged": int(diff.get("unchanged", 0)),
        },
        "repaired": int(version.report.get("repaired", 0)),
        "empty_geometries": int(version.report.get("empty", 0)),
        "warnings": list(version.report.get("warnings", [])),
        "note": version.note,
        "withdrawn": (
            {
                "at": version.withdrawn_at.isoformat(),
                "reason": version.withdrawn_reason,
            }
            if version.withdrawn_at
            else None
        ),
    }


def layer_history(
    conn: Connection[Any], layer: Layer, *, limit: int = 200
) -> list[dict[str, Any]]:
    """The layer's recorded changes, newest first: who did what, when."""
    entries = audit.list_audit(
        conn, object_type="layer", object_id=layer.slug, limit=limit
    )
    return [
        {
            "at": e.at.isoformat(),
            "action": e.action,
            "actor": e.actor,
            "user_id": e.user_id,
            "version": e.details.get("version"),
            "previous": e.details.get("previous"),
            "file": e.details.get("file"),
            "details": e.details,
        }
        for e in entries
        if e.action in HISTORY_ACTIONS
    ]


def uploaders(history: list[dict[str, Any]]) -> dict[int, str]:
    """Version number -> who uploaded it, from a layer's history."""
    return {
        int(h["version"]): str(h["actor"])
        for h in history
        if h["action"] == "ingest" and h["version"] is not None
    }
