"""API keys: shown once, stored hashed, granted own-agency layers, expire, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from sdi import registry
from sdi.errors import BadInputError, ForbiddenError, NotFoundError
from sdi.registry import apikeys, audit, tokens
from sdi.registry.models import Agency, Layer, User

Conn = psycopg.Connection[Any]
PW = "long enough password"


@pytest.fixture
def world(conn: Conn) -> dict[str, Any]:
    own = registry.create_agency(conn, "landsd", "Lands Department")
    other = registry.create_agency(conn, "td", "Transport Department")
    licence = registry.get_licence(conn, "restricted")

    def mk(email: str, role: str, agency: Agency | None) -> User:
        return registry.create_user(conn, email, PW, role, agency=agency)

    def layer(agency: Agency, slug: str) -> Layer:
        data = registry.LayerInput(slug, slug, licence.id, visibility="restricted")
        return registry.create_layer(conn, agency, data)

    return {
        "own": own,
        "other": other,
        "platform": mk("p@x.test", "platform_admin", None),
        "admin": mk("a@own.test", "agency_admin", own),
        "editor": mk("e@own.test", "agency_editor", own),
        "other_admin": mk("a@other.test", "agency_admin", other),
        "roads": layer(own, "landsd_roads"),
        "lots": layer(own, "landsd_lots"),
        "buses": layer(other, "td_buses"),
    }


def test_lifecycle(conn: Conn, world: dict[str, Any]) -> None:
    admin, own = world["admin"], world["own"]
    record, key = apikeys.create_key(
        conn, admin, own.id, "GIS vendor", ["landsd_roads", "landsd_roads"]
    )
    assert key.startswith(f"sdi_{record.prefix}_")
    assert key not in record.key_hash and record.key_hash != key
    stored = conn.execute(
        "SELECT key_hash FROM sdi.api_keys WHERE id = %s", (record.id,)
    ).fetchone()
    assert stored is not None and key not in stored[0]
    found = apikeys.verify(conn, key)
    assert found is not None
    assert found[0].id == record.id and found[1] == {world["roads"].id}
    assert apikeys.key_status(record) == "active"

    layers = apikeys.set_key_layers(
        conn, admin, record.id, ["landsd_lots", "landsd_roads"]
    )
    assert [layer.slug for layer in layers] == ["landsd_lots", "landsd_roads"]
    assert apikeys.verify(conn, key)[1] == {world["roads"].id, world["lots"].id}  # type: ignore[index]

    revoked = apikeys.revoke_key(conn, admin, record.id)
    assert apikeys.key_status(revoked) == "revoked"
    assert apikeys.verify(conn, key) is None
    assert apikeys.revoke_key(conn, admin, record.id).revoked_at == revoked.revoked_at
    actions = [e.action for e in audit.list_audit(conn, object_type="api_key")]
    assert actions == ["revoke", "grant", "create"]
    # Nothing secret in the audit log.
    assert all(key not in str(e.details) for e in audit.list_audit(conn))


def test_verify_refuses_forgeries_and_expired_keys(
    conn: Conn, world: dict[str, Any]
) -> None:
    admin, own = world["admin"], world["own"]
    soon = datetime.now(UTC) + timedelta(hours=1)
    record, key = apikeys.create_key(
        conn, admin, own.id, "short", ["landsd_roads"], expires_at=soon
    )
    assert apikeys.verify(conn, key) is not None
    for bad in (
        "",
        "sdi",
        key + "x",
        key.replace("sdi_", "sdx_"),
        f"sdi_{record.prefix}_x",
    ):
        assert apikeys.verify(conn, bad) is None
    conn.execute(
        "UPDATE sdi.api_keys SET expires_at = now() - interval '1s' WHERE id = %s",
        (record.id,),
    )
    assert apikeys.verify(conn, key) is None
    assert apikeys.key_status(apikeys.get_key(conn, admin, record.id)) == "expired"


def test_bad_input(conn: Conn, world: dict[str, Any]) -> None:
    admin, own = world["admin"], world["own"]
    with pytest.raises(BadInputError, match="name"):
        apikeys.create_key(conn, admin, own.id, "  ")
    with pytest.raises(BadInputError, match="future"):
        apikeys.create_key(
            conn, admin, own.id, "k", expires_at=datetime.now(UTC) - timedelta(days=1)
        )
    with pytest.raises(BadInputError, match="time zone"):
        apikeys.create_key(conn, admin, own.id, "k", expires_at=datetime(2099, 1, 1))
    with pytest.raises(NotFoundError):
        apikeys.create_key(conn, admin, own.id, "k", ["no_such_layer"])
    assert apikeys.list_keys(conn, admin, own.id) == []


def test_grants_only_own_agency_layers(conn: Conn, world: dict[str, Any]) -> None:
    admin, own, p = world["admin"], world["own"], world["platform"]
    # An agency admin naming another agency's layer: "not found".
    with pytest.raises(NotFoundError, match="td_buses"):
        apikeys.create_key(conn, admin, own.id, "k", ["td_buses"])
    # A platform admin sees it, but a key opens only its own agency's layers.
    with pytest.raises(BadInputError, match="another agency"):
        apikeys.create_key(conn, p, own.id, "k", ["landsd_roads", "td_buses"])
    record, _ = apikeys.create_key(conn, admin, own.id, "k", ["landsd_roads"])
    with pytest.raises(NotFoundError):
        apikeys.set_key_layers(conn, admin, record.id, ["td_buses"])
    assert [layer.slug for layer in apikeys.key_layers(conn, record.id)] == [
        "landsd_roads"
    ]
    assert len(apikeys.list_keys(conn, admin, own.id)) == 1


def test_permissions(conn: Conn, world: dict[str, Any]) -> None:
    own, other = world["own"], world["other"]
    record, _ = apikeys.create_key(conn, world["admin"], own.id, "k")
    with pytest.raises(ForbiddenError):
        apikeys.create_key(conn, world["editor"], own.id, "k")
    with pytest.raises(ForbiddenError):
        apikeys.list_keys(conn, world["editor"], own.id)
    with pytest.raises(ForbiddenError):
        apikeys.revoke_key(conn, world["editor"], record.id)
    with pytest.raises(ForbiddenError):
        apikeys.create_key(conn, world["other_admin"], own.id, "k")
    with pytest.raises(NotFoundError):
        apikeys.revoke_key(conn, world["other_admin"], record.id)
    with pytest.raises(NotFoundError):
        apikeys.get_key(conn, world["other_admin"], record.id)
    assert apikeys.verify is not None
    assert apikeys.list_keys(conn, world["other_admin"], other.id) == []
    assert apikeys.revoke_key(conn, world["platform"], record.id).revoked_at


def test_personal_tokens(conn: Conn, world: dict[str, Any]) -> None:
    editor, admin = world["editor"], world["admin"]
    record, token = tokens.create_token(conn, editor, "ci")
    assert token.startswith(f"sdit_{record.prefix}_")
    user = tokens.authenticate_token(conn, token)
    assert user is not None and user.id == editor.id
    assert tokens.list_tokens(conn, editor)[0].last_used_at is not None
    assert tokens.authenticate_token(conn, token[:-1]) is None
    assert tokens.authenticate_token(conn, "sdi_x_y") is None
    # Another agency's admin cannot see it (the editor's own admin can: tests
    # of the HTTP API).
    with pytest.raises(NotFoundError):
        tokens.revoke_token(conn, world["other_admin"], record.id)
    tokens.revoke_token(conn, editor, record.id)
    assert tokens.authenticate_token(conn, token) is None
    assert tokens.list_tokens(conn, editor)[0].status() == "revoked"

    _, expiring = tokens.create_token(
        conn, editor, "soon", expires_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert tokens.authenticate_token(conn, expiring) is not None
    conn.execute("UPDATE sdi.api_tokens SET expires_at = now() - interval '1s'")
    assert tokens.authenticate_token(conn, expiring) is None

    _, fresh = tokens.create_token(conn, editor, "fresh")
    conn.execute("UPDATE sdi.users SET active = false WHERE id = %s", (editor.id,))
    assert tokens.authenticate_token(conn, fresh) is None
    with pytest.raises(BadInputError):
        tokens.create_token(conn, admin, "")
