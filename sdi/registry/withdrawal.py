"""Taking a version down: a version published in error stops existing as data.

A platform admin withdraws version N of a layer with a reason. In one
transaction:

* the version row stays (its number is never reused) and records when, by
  whom and why; the API answers 410 Gone with the reason for it;
* rows of the layer table whose whole lifetime ``[_sdi_from, _sdi_to)`` lies
  inside withdrawn versions are deleted. Rows of N that continue unchanged
  into a later, served version belong to that version too and stay (the
  result says how many and where, so the admin can withdraw that one too);
* when no served version follows N, the rows N (or later withdrawn versions)
  closed are reopened (``_sdi_to = NULL``), so the next upload is compared
  with the newest served version;
* the diff recorded for the next served version is recomputed against the
  served version before N (the neighbours of a gap compare with each other);
* if N was the published version the layer falls back to the newest earlier
  served version (:func:`sdi.registry.layers.publish`, audited as a roll
  back) or is unpublished when there is none;
* the audit log gets a ``withdraw`` entry (who, when, why, what was purged)
  and the publication generation moves, so every API process follows.

The raster file ``v<N>.tif`` is deleted by the caller once this commits
(:func:`sdi.publish.actions.withdraw_version`): a file must not vanish for a
transaction that rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sdi.errors import BadInputError, ConflictError, NotFoundError
from sdi.providers.sql import LayerTable, changes_count_sql
from sdi.registry import audit, permissions
from sdi.registry.catalog import DATA_SCHEMA, table_srid
from sdi.registry.layers import get_layer, publish, unpublish
from sdi.registry.models import Layer, User, Version
from sdi.registry.permissions import Action
from sdi.registry.publication import bump_generation
from sdi.registry.versions import list_versions

__all__ = ["MAX_REASON", "Withdrawal", "carried_forward", "withdraw_version"]

#: Longest reason kept (it is shown in every 410 answer for the version).
MAX_REASON = 500

_MARK = """
UPDATE sdi.layer_versions
SET withdrawn_at = now(), withdrawn_by = %s, withdrawn_reason = %s
WHERE layer_id = %s AND number = %s
RETURNING *
"""
_SET_DIFF = """
UPDATE sdi.layer_versions SET diff = %s
WHERE layer_id = %s AND number = %s
"""


@dataclass(frozen=True)
class Withdrawal:
    """What withdrawing a version did."""

    layer: Layer
    version: Version
    #: Rows of the layer table deleted (0 for a raster layer).
    rows_deleted: int
    #: Rows closed by withdrawn versions and reopened (the newest served
    #: version's features become the current ones again).
    rows_reopened: int
    #: The next served version after the withdrawn one, and how many of the
    #: features the withdrawn version added or changed it holds unchanged
    #: (kept: they are its data too).
    carried_into: int | None
    carried: int
    published_before: int | None
    published_after: int | None

    def to_json(self) -> dict[str, Any]:
        """The result as the JSON API and the CLI report it."""
        return {
            "layer": self.layer.slug,
            "version": self.version.number,
            "withdrawn_at": (
                self.version.withdrawn_at.isoformat()
                if self.version.withdrawn_at
                else None
            ),
            "reason": self.version.withdrawn_reason,
            "rows_deleted": self.rows_deleted,
            "rows_reopened": self.rows_reopened,
            "carried_forward": (
                {"version": self.carried_into, "features": self.carried}
                if self.carried_into is not None and self.carried
                else None
            ),
            "published_before": self.published_before,
            "published_after": self.published_after,
        }


def _table(slug: str) -> sql.Composable:
    return sql.Identifier(DATA_SCHEMA, slug)


def _has_table(conn: Connection[Any], slug: str) -> bool:
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
        (DATA_SCHEMA, slug),
    ).fetchone()
    return bool(row and row[0])


def _kept_after(versions: list[Version], number: int) -> int | None:
    later = [v.number for v in versions if v.number > number and not v.withdrawn]
    return min(later) if later else None


def _kept_before(versions: list[Version], number: int) -> int | None:
    earlier = [v.number for v in versions if v.number < number and not v.withdrawn]
    return max(earlier) if earlier else None


def carried_forward(
    conn: Connection[Any], layer: Layer, number: int
) -> tuple[int | None, int]:
    """The next served version after ``number``, and how many of the feature
    states ``number`` brought (added or changed since the served version
    before it) that version still holds unchanged.

    Those features are that version's data as much as ``number``'s: withdrawing
    ``number`` keeps them. The confirmation page says so before anything is done.
    """
    versions = list_versions(conn, layer.id)
    following = _kept_after(versions, number)
    if following is None or layer.kind != "vector" or not _has_table(conn, layer.slug):
        return following, 0
    latest = max(v.number for v in versions)
    before = _kept_before(versions, number) or 0
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE _sdi_from > %s AND _sdi_from <= %s"
            " AND coalesce(_sdi_to, %s) > %s"
        ).format(_table(layer.slug)),
        (before, number, latest + 1, following),
    ).fetchone()
    return following, int(row[0]) if row else 0


def _purge_rows(
    conn: Connection[Any], slug: str, number: int, kept: list[int], latest: int
) -> int:
    """Delete the rows of ``number`` that no served version holds."""
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {} AS t WHERE t._sdi_from <= %(n)s"
            " AND coalesce(t._sdi_to, %(end)s) > %(n)s"
            " AND NOT EXISTS (SELECT 1 FROM unnest(%(kept)s::integer[]) AS k"
            " WHERE k >= t._sdi_from AND k < coalesce(t._sdi_to, %(end)s))"
        ).format(_table(slug)),
        {"n": number, "end": latest + 1, "kept": kept},
    )
    return cur.rowcount


def _reopen(conn: Connection[Any], slug: str, newest_kept: int) -> int:
    """Make the newest served version's rows the open ones again."""
    cur = conn.execute(
        sql.SQL(
            "UPDATE {} SET _sdi_to = NULL WHERE _sdi_from <= %s AND _sdi_to > %s"
        ).format(_table(slug)),
        (newest_kept, newest_kept),
    )
    return cur.rowcount


def _rediff(
    conn: Connection[Any], layer: Layer, previous: int | None, following: Version
) -> dict[str, Any]:
    """The diff of ``following`` against ``previous`` (0: the empty layer)."""
    srid = table_srid(conn, layer.slug) or 0
    old = LayerTable(layer.slug, previous or 0, srid, ())
    new = LayerTable(layer.slug, following.number, srid, ())
    statement, params = changes_count_sql(old, new)
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    added, changed, removed = (int(v) for v in row)
    diff = {
        "added": added,
        "changed": changed,
        "removed": removed,
        "unchanged": max(0, following.feature_count - added - changed),
        "against": previous or 0,
    }
    conn.execute(_SET_DIFF, (Jsonb(diff), layer.id, following.number))
    return diff


def withdraw_version(
    conn: Connection[Any],
    slug: str,
    number: int,
    reason: str,
    *,
    by: User | None,
    actor: str = "cli",
) -> Withdrawal:
    """Take version ``number`` of layer ``slug`` down, for ``reason``.

    ``by`` is the signed-in person (checked: platform admins only); None is
    the operator at the CLI, who runs with the database's rights anyway.
    See the module's docstring for what happens.
    """
    reason = " ".join((reason or "").split())
    if not reason:
        raise BadInputError("Give the reason for withdrawing the version.")
    if len(reason) > MAX_REASON:
        raise BadInputError(
            f"The reason is {len(reason)} characters long; at most {MAX_REASON}."
        )
    with conn.transaction():
        try:
            layer = get_layer(conn, slug, for_update=True)
        except NotFoundError:
            raise NotFoundError(f"No layer {slug!r}.") from None
        if by is not None:
            permissions.require_layer(by, Action.WITHDRAW_VERSION, layer)
            actor = by.email
        versions = list_versions(conn, layer.id)
        target = next((v for v in versions if v.number == number), None)
        if target is None:
            raise NotFoundError(f"Layer {slug!r} has no version {number}.")
        if target.withdrawn:
            raise ConflictError(f"Version {number} of {slug!r} is already withdrawn.")
        kept = [v.number for v in versions if not v.withdrawn and v.number != number]
        latest = max(v.number for v in versions)
        following, carried = carried_forward(conn, layer, number)
        deleted = reopened = 0
        if layer.kind == "vector" and _has_table(conn, slug):
            deleted = _purge_rows(conn, slug, number, kept, latest)
            newest_kept = max(kept, default=0)
            if number > newest_kept:
                reopened = _reopen(conn, slug, newest_kept) if newest_kept else 0
            if following is not None:
                later = next(v for v in versions if v.number == following)
                _rediff(conn, layer, _kept_before(versions, number), later)
        with conn.cursor(row_factory=class_row(Version)) as cur:
            marked = cur.execute(
                _MARK, (by.id if by else None, reason, layer.id, number)
            ).fetchone()
        assert marked is not None
        before = layer.published_version
        after = before
        if before == number:
            fallback = max((k for k in kept if k < number), default=None)
            user_id = by.id if by else None
            if fallback is None:
                layer = unpublish(conn, slug, actor=actor, user_id=user_id)
            else:
                layer = publish(conn, slug, fallback, actor=actor, user_id=user_id)
            after = layer.published_version
        result = Withdrawal(
            layer=layer,
            version=marked,
            rows_deleted=deleted,
            rows_reopened=reopened,
            carried_into=following if carried else None,
            carried=carried,
            published_before=before,
            published_after=after,
        )
        details = result.to_json()
        details.pop("layer")
        audit.record(
            conn,
            "withdraw",
            "layer",
            slug,
            actor=actor,
            user_id=by.id if by else None,
            details=details,
        )
        bump_generation(conn)
    return result
