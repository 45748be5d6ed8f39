"""API keys: an agency grants a key access to chosen restricted layers.

The plaintext ``sdi_<prefix>_<secret>`` is returned once by :func:`create_key`;
the table keeps the public prefix and the SHA-256 of the key. The OGC API side
asks :func:`verify` which layers a presented key opens.

Management functions take the acting user as ``by`` and check
``sdi.registry.permissions`` (``MANAGE_KEYS`` on the key's agency); another
agency's keys and layers are "not found".
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from sdi.errors import BadInputError, NotFoundError
from sdi.registry import audit, permissions
from sdi.registry.layers import get_layer
from sdi.registry.models import ApiKey, Layer, User
from sdi.registry.passwords import hash_api_key, new_api_key
from sdi.registry.permissions import Action
from sdi.registry.users import require_owned

__all__ = [
    "create_key",
    "get_key",
    "key_layers",
    "key_status",
    "list_keys",
    "revoke_key",
    "set_key_layers",
    "verify",
]

_INSERT = """
INSERT INTO sdi.api_keys (agency_id, name, prefix, key_hash, created_by, expires_at)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING *
"""
_GRANT = "INSERT INTO sdi.api_key_layers (key_id, layer_id) VALUES (%s, %s)"
_UNGRANT_ALL = "DELETE FROM sdi.api_key_layers WHERE key_id = %s"
_BY_ID = "SELECT * FROM sdi.api_keys WHERE id = %s"
_BY_PREFIX = "SELECT * FROM sdi.api_keys WHERE prefix = %s"
_LIST = """
SELECT * FROM sdi.api_keys
WHERE (%(agency_id)s::int IS NULL OR agency_id = %(agency_id)s)
ORDER BY id DESC
"""
_LAYERS = """
SELECT l.* FROM sdi.layers l JOIN sdi.api_key_layers g ON g.layer_id = l.id
WHERE g.key_id = %s ORDER BY l.slug
"""
_LAYER_IDS = "SELECT layer_id FROM sdi.api_key_layers WHERE key_id = %s"
_REVOKE = "UPDATE sdi.api_keys SET revoked_at = now() WHERE id = %s RETURNING *"


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or datetime.now(UTC)
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _layers_of(
    conn: Connection[Any], by: User, agency_id: int, slugs: Iterable[str]
) -> list[Layer]:
    layers = []
    for slug in dict.fromkeys(slugs):  # unique, in order
        layer = get_layer(conn, slug)
        permissions.require_layer(by, Action.VIEW_LAYER, layer)
        if layer.agency_id != agency_id:
            raise BadInputError(
                f"Layer {slug!r} belongs to another agency; a key opens only its "
                "own agency's layers."
            )
        layers.append(layer)
    return layers


def create_key(
    conn: Connection[Any],
    by: User,
    agency_id: int,
    name: str,
    layer_slugs: Iterable[str] = (),
    *,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key of ``agency_id`` opening ``layer_slugs``; returns (record, key).

    The plaintext key is not stored anywhere: show it once.
    """
    permissions.require(by, Action.MANAGE_KEYS, agency_id=agency_id)
    name = name.strip()
    if not name or len(name) > 100:
        raise BadInputError("A key needs a name of 1 to 100 characters.")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise BadInputError("An expiry date needs a time zone.")
        if expires_at <= datetime.now(UTC):
            raise BadInputError("The expiry date must be in the future.")
    key, prefix = new_api_key()
    with conn.transaction():
        layers = _layers_of(conn, by, agency_id, layer_slugs)
        with conn.cursor(row_factory=class_row(ApiKey)) as cur:
            record = cur.execute(
                _INSERT,
                (agency_id, name, prefix, hash_api_key(key), by.id, expires_at),
            ).fetchone()
        assert record is not None
        for layer in layers:
            conn.execute(_GRANT, (record.id, layer.id))
        audit.record(
            conn,
            "create",
            "api_key",
            record.id,
            actor=by.email,
            user_id=by.id,
            details={
                "name": name,
                "prefix": prefix,
                "layers": [layer.slug for layer in layers],
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return record, key


def list_keys(conn: Connection[Any], by: User, agency_id: int | None) -> list[ApiKey]:
    """An agency's keys (None: every agency's, platform admins), newest first."""
    permissions.require(by, Action.MANAGE_KEYS, agency_id=agency_id)
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        return cur.execute(_LIST, {"agency_id": agency_id}).fetchall()


def get_key(conn: Connection[Any], by: User, key_id: int) -> ApiKey:
    """A key ``by`` may manage; another agency's keys are "not found"."""
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        key = cur.execute(_BY_ID, (key_id,)).fetchone()
    not_found = f"No API key {key_id}."
    if key is None:
        raise NotFoundError(not_found)
    require_owned(by, Action.MANAGE_KEYS, key.agency_id, not_found)
    return key


def key_layers(conn: Connection[Any], key_id: int) -> list[Layer]:
    """The layers a key opens, by slug (no permission check: pass a known key)."""
    with conn.cursor(row_factory=class_row(Layer)) as cur:
        return cur.execute(_LAYERS, (key_id,)).fetchall()


def set_key_layers(
    conn: Connection[Any], by: User, key_id: int, layer_slugs: Iterable[str]
) -> list[Layer]:
    """Replace the layers a key opens; returns them."""
    with conn.transaction():
        key = get_key(conn, by, key_id)
        before = [layer.slug for layer in key_layers(conn, key.id)]
        layers = _layers_of(conn, by, key.agency_id, layer_slugs)
        conn.execute(_UNGRANT_ALL, (key.id,))
        for layer in layers:
            conn.execute(_GRANT, (key.id, layer.id))
        after = sorted(layer.slug for layer in layers)
        if after != before:
            audit.record(
                conn,
                "grant",
                "api_key",
                key.id,
                actor=by.email,
                user_id=by.id,
                details={"prefix": key.prefix, "from": before, "to": after},
            )
    return sorted(layers, key=lambda layer: layer.slug)


def revoke_key(conn: Connection[Any], by: User, key_id: int) -> ApiKey:
    """Revoke a key for good (revoking twice changes nothing)."""
    with conn.transaction():
        key = get_key(conn, by, key_id)
        if key.revoked_at is not None:
            return key
        with conn.cursor(row_factory=class_row(ApiKey)) as cur:
            revoked = cur.execute(_REVOKE, (key.id,)).fetchone()
        assert revoked is not None
        audit.record(
            conn,
            "revoke",
            "api_key",
            key.id,
            actor=by.email,
            user_id=by.id,
            details={"name": key.name, "prefix": key.prefix},
        )
    return revoked


def verify(conn: Connection[Any], key: str) -> tuple[ApiKey, set[int]] | None:
    """The key record and the ids of the layers it opens; None if unknown,
    expired or revoked."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "sdi":
        return None
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        record = cur.execute(_BY_PREFIX, (parts[1],)).fetchone()
    if record is None or not hmac.compare_digest(record.key_hash, hash_api_key(key)):
        return None
    if key_status(record) != "active":
        return None
    return record, {int(row[0]) for row in conn.execute(_LAYER_IDS, (record.id,))}
