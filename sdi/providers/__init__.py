"""pygeoapi plugins reading the versioned ``sdi_data`` tables.

pygeoapi loads them by dotted path from the generated configuration, e.g.
``sdi.providers.features.VersionedFeatureProvider``.
"""

from sdi.providers.features import ProviderUnavailableError, VersionedFeatureProvider
from sdi.providers.pool import DATABASE_URL_ENV, close_pools, get_pool

__all__ = [
    "DATABASE_URL_ENV",
    "ProviderUnavailableError",
    "VersionedFeatureProvider",
    "close_pools",
    "get_pool",
]
