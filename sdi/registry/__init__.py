"""The registry: agencies, users, licences, layers, versions, API keys, audit log.

Plain functions ``f(conn, ...)`` over the ``sdi`` schema; the single source of
truth from which the API configuration is derived.
"""

from sdi.registry import (
    apikeys,
    audit,
    permissions,
    sessions,
    throttle,
    tokens,
    users,
)
from sdi.registry.agencies import (
    create_agency,
    create_user,
    get_agency,
    get_user_by_email,
    list_agencies,
    update_agency,
)
from sdi.registry.layers import (
    LayerInput,
    create_layer,
    get_layer,
    list_layers,
    publish,
    unpublish,
    update_layer,
)
from sdi.registry.licences import (
    create_licence,
    get_licence,
    get_licence_by_id,
    list_licences,
    update_licence,
)
from sdi.registry.models import (
    Agency,
    ApiKey,
    AuditEntry,
    Layer,
    Licence,
    User,
    Version,
)
from sdi.registry.publication import bump_generation, current_generation
from sdi.registry.tokens import ApiToken
from sdi.registry.versions import (
    get_version,
    insert_version,
    latest_version_number,
    list_versions,
)
from sdi.registry.withdrawal import Withdrawal, withdraw_version

__all__ = [
    "Agency",
    "ApiKey",
    "ApiToken",
    "AuditEntry",
    "Layer",
    "LayerInput",
    "Licence",
    "User",
    "Version",
    "Withdrawal",
    "apikeys",
    "audit",
    "bump_generation",
    "create_agency",
    "create_layer",
    "create_licence",
    "create_user",
    "current_generation",
    "get_agency",
    "get_layer",
    "get_licence",
    "get_licence_by_id",
    "get_user_by_email",
    "get_version",
    "insert_version",
    "latest_version_number",
    "list_agencies",
    "list_layers",
    "list_licences",
    "list_versions",
    "permissions",
    "publish",
    "sessions",
    "throttle",
    "tokens",
    "unpublish",
    "update_agency",
    "update_layer",
    "update_licence",
    "users",
    "withdraw_version",
]
