"""The running pygeoapi configuration: the hand-written base plus the registry."""

from __future__ import annotations

import copy
import logging
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from psycopg import Connection
from pygeoapi.config import validate_config
from pygeoapi.openapi import get_oas
from pygeoapi.util import yaml_load

from sdi.errors import SdiError
from sdi.publish.catalog import add_catalog
from sdi.publish.features_oas import add_feature_paths
from sdi.publish.rasters import add_raster_paths, raster_resources
from sdi.publish.resources import build_resources, published_records
from sdi.publish.vtiles import add_vector_tile_paths
from sdi.registry.snapshot import registry_snapshot
from sdi.settings import Settings

__all__ = [
    "BASE_CONFIG_NAME",
    "TEMPLATES_DIR",
    "ConfigError",
    "base_config_path",
    "build_config",
    "build_openapi",
    "check_config",
    "load_base_config",
]

LOGGER = logging.getLogger(__name__)

BASE_CONFIG_NAME = "pygeoapi.yml"

#: sdi's HTML templates (``sdi/api/templates``), searched before pygeoapi's own.
#: Named by path, not imported: the API layer sits above this one.
TEMPLATES_DIR = str(files("sdi").joinpath("api", "templates"))


class ConfigError(SdiError):
    """The pygeoapi configuration cannot be built or is invalid."""


def base_config_path(settings: Settings) -> Path:
    """Where the hand-written base configuration is read from."""
    return settings.config_dir / BASE_CONFIG_NAME


def load_base_config(settings: Settings) -> dict[str, Any]:
    """The base configuration with the server section filled in from ``settings``."""
    path = base_config_path(settings)
    try:
        with path.open(encoding="utf-8") as fh:
            config = yaml_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"No pygeoapi base configuration at {path}: set SDI_CONFIG_DIR to the "
            "directory holding pygeoapi.yml (the repository's config/)."
        ) from exc
    except OSError as exc:  # EnvironmentError: a ${VAR} with no value, unreadable
        raise ConfigError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("server"), dict):
        raise ConfigError(f"{path} has no server section.")
    server = config["server"]
    server["url"] = settings.public_url
    server["bind"] = {"host": settings.host, "port": settings.port}
    limits = dict(server.get("limits") or {})
    limits["default_items"] = settings.limit_default
    limits["max_items"] = settings.limit_max
    limits.setdefault("on_exceed", "throttle")
    server["limits"] = limits
    server["templates"] = {"path": TEMPLATES_DIR}
    # pygeoapi requires server.map; an empty URL means "no basemap" to our
    # templates, so pages fetch nothing from other hosts unless asked to.
    server["map"] = {
        "url": settings.basemap_url,
        "attribution": settings.basemap_attribution,
    }
    config["resources"] = dict(config.get("resources") or {})
    return config


def build_config(conn: Connection[Any], settings: Settings) -> dict[str, Any]:
    """The whole pygeoapi configuration: base plus one collection per published layer.

    Vector layers get a feature collection, raster layers a coverage
    collection (:mod:`sdi.publish.rasters`).

    Built in memory from the registry, which is the truth; nothing here reads
    ``collections/``. Every registry read happens in one snapshot
    (:func:`~sdi.registry.snapshot.registry_snapshot`), so a publish or
    withdrawal committed meanwhile is seen entirely or not at all.
    """
    config = load_base_config(settings)
    resources = config["resources"]
    with registry_snapshot(conn):
        # The registry is read once for the layers, rasters and catalogue.
        records = published_records(conn, settings.storage_srid)
        layers = build_resources(
            conn, settings.storage_srid, settings.public_url, records
        ) | raster_resources(conn, settings, records)
        for slug, resource in layers.items():
            if slug in resources:
                LOGGER.warning("layer %s replaces the base resource of that name", slug)
            resources[slug] = resource
        # OGC API - Records: "catalog"
        add_catalog(resources, conn, settings, layers, records)
    return config


def build_openapi(config: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of ``config``, by pygeoapi's own generator (in memory).

    A collection pygeoapi cannot describe is left out (and logged) rather than
    taking the whole document down.
    """
    # get_oas adds defaults to the dicts it reads; keep the caller's intact.
    oas: dict[str, Any] = get_oas(
        copy.deepcopy(config), fail_on_invalid_collection=False
    )
    add_raster_paths(oas, config)
    add_vector_tile_paths(oas, config)
    add_feature_paths(oas, config)
    _add_api_key_scheme(oas)
    return oas


def _add_api_key_scheme(oas: dict[str, Any]) -> None:
    """Declare how API keys travel (they open restricted collections)."""
    schemes = oas.setdefault("components", {}).setdefault("securitySchemes", {})
    description = (
        "Optional. A key granted by a data owner opens its restricted "
        "collections; without one only public collections exist. Also "
        "accepted as the api_key query parameter."
    )
    schemes["sdiApiKey"] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": description,
    }
    # Every operation works without a key ({}), or with one.
    oas["security"] = [{}, {"sdiApiKey": []}]


def check_config(config: dict[str, Any]) -> None:
    """Validate against pygeoapi's configuration schema; ``ConfigError`` if invalid."""
    try:
        validate_config(config)
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ConfigError(
            f"Invalid pygeoapi configuration at {where}: {exc.message}"
        ) from exc
