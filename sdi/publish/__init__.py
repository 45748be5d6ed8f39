"""Registry -> pygeoapi: resource definitions, the running configuration, OpenAPI.

The registry is the truth. :func:`build_config` derives the whole pygeoapi
configuration from it in memory (the API does this whenever the publication
generation moves); :func:`write_collections` writes readable generated copies
to ``collections/``.
"""

from sdi.publish.catalog import CATALOG_ID, catalog_resource
from sdi.publish.config import (
    ConfigError,
    base_config_path,
    build_config,
    build_openapi,
    check_config,
    load_base_config,
)
from sdi.publish.files import GENERATED_HEADER, render_collection, write_collections
from sdi.publish.resources import (
    CRS84,
    ID_FIELD,
    PROVIDER_NAME,
    SUPPORTED_CRS,
    build_resources,
    collection_resource,
    restricted_layers,
)

__all__ = [
    "CATALOG_ID",
    "CRS84",
    "GENERATED_HEADER",
    "ID_FIELD",
    "PROVIDER_NAME",
    "SUPPORTED_CRS",
    "ConfigError",
    "base_config_path",
    "build_config",
    "build_openapi",
    "build_resources",
    "catalog_resource",
    "check_config",
    "collection_resource",
    "load_base_config",
    "render_collection",
    "restricted_layers",
    "write_collections",
]
