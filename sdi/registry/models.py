"""The registry's records, as frozen dataclasses (one per table row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Agency", "ApiKey", "AuditEntry", "Layer", "Licence", "User", "Version"]

ROLES = ("platform_admin", "agency_admin", "agency_editor")


@dataclass(frozen=True)
class Agency:
    """A government department that owns layers."""

    id: int
    code: str
    name_en: str
    name_zh: str
    contact_email: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    """A person who signs in to the admin app."""

    id: int
    agency_id: int | None
    email: str
    name: str
    password_hash: str
    role: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Licence:
    """Terms under which a layer may be used."""

    id: int
    code: str
    name_en: str
    name_zh: str
    url: str
    attribution_en: str
    attribution_zh: str
    restricted: bool


@dataclass(frozen=True)
class Layer:
    """A dataset an agency publishes; its data lives in ``sdi_data.<slug>``."""

    id: int
    slug: str
    agency_id: int
    kind: str
    title_en: str
    title_zh: str
    abstract_en: str
    abstract_zh: str
    keywords: list[str]
    theme: str
    contact: str
    update_frequency: str
    licence_id: int
    visibility: str
    key_column: str | None
    time_column: str | None
    published_version: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Version:
    """One immutable upload of a layer."""

    layer_id: int
    number: int
    created_by: int | None
    created_at: datetime
    source_filename: str
    source_sha256: str
    source_format: str
    source_layer: str | None
    source_crs: str
    source_encoding: str | None
    feature_count: int
    geometry_type: str
    extent: list[float] | None
    schema: dict[str, Any]
    diff: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    #: When the version was first published; None: never.
    first_published_at: datetime | None = None
    #: When and why a platform admin took the version down; None: served.
    withdrawn_at: datetime | None = None
    withdrawn_by: int | None = None
    withdrawn_reason: str | None = None

    @property
    def withdrawn(self) -> bool:
        """Whether the version was taken down (its data purged, never served)."""
        return self.withdrawn_at is not None


@dataclass(frozen=True)
class ApiKey:
    """A key granting access to restricted layers."""

    id: int
    agency_id: int
    name: str
    prefix: str
    key_hash: str
    created_by: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change."""

    id: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
