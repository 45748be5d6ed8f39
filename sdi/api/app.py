"""The OGC API WSGI app: a thin Flask app over pygeoapi's framework-neutral API.

Routes call pygeoapi's API functions (``pygeoapi.api.landing_page``,
``pygeoapi.api.itemtypes.get_collection_items``, ...) with the ``API`` object
of the current publication (:class:`sdi.api.live.LiveApi`), the way
``pygeoapi.flask_app.execute_from_flask`` does, without importing that module
(it builds its configuration at import time from ``PYGEOAPI_CONFIG``).

Works mounted at ``/`` (the lead mounts the admin app under ``/admin``); links
are built from ``settings.public_url``.

``/static`` serves pygeoapi's static files (its css and images) and, under
``/static/vendor``, the front-end libraries that ``scripts/build-assets``
bundles from npm for sdi's templates (``sdi/api/templates``): the pages load
nothing from other hosts.
"""

from __future__ import annotations

import logging
import os
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
from flask import (
    Flask,
    Response,
    request,
    send_from_directory,
)
from pygeoapi.api import API, APIRequest
from werkzeug.exceptions import HTTPException

from sdi.api import (
    bodies,
    caching,
    error_log,
    features,
    l10n_scope,
    outputs,
    rasters,
    render_limit,
    security,
    version_list,
    vtiles,
)
from sdi.api import collections as collections_
from sdi.api import conformance as conformance_
from sdi.api.access import API_KEY_HEADER, presented_key
from sdi.api.live import RELOAD_INTERVAL_S, LiveApi
from sdi.api.runtime import (
    EXTENSION_KEY,
    ApiFunction,
    Content,
    execute,
    live_api,
    ogc_error,
)
from sdi.errors import SdiError
from sdi.providers import DATABASE_URL_ENV
from sdi.settings import Settings

__all__ = ["EXTENSION_KEY", "create_app", "live_api"]
_execute = execute
_ogc_error = ogc_error

LOGGER = logging.getLogger(__name__)

_STATIC = Path(pygeoapi.__file__).parent / "static"
#: Front-end libraries bundled by ``scripts/build-assets`` (not in git).
_VENDOR = Path(__file__).parent / "static" / "vendor"
#: sdi's scripts and styles of its page templates.
_OWN_STATIC = Path(__file__).parent / "static" / "sdi"

_OGC_CODES = {
    400: "InvalidParameterValue",
    404: "NotFound",
    405: "OperationNotSupported",
    406: "InvalidParameterValue",
    503: "ServiceUnavailable",
}


def _check_database_env(settings: Settings) -> None:
    """Providers read ``SDI_DATABASE_URL``; it must name the registry's database."""
    env_url = os.environ.get(DATABASE_URL_ENV)
    if env_url is None:
        LOGGER.warning(
            "SDI_DATABASE_URL is not set: collections will fail to read features "
            "(sdi serve sets it)"
        )
    elif env_url != settings.database_url:
        raise SdiError(
            "SDI_DATABASE_URL differs from the settings' database URL: the API "
            "would describe one database and serve features from another."
        )


def _register_vendor(app: Flask) -> None:
    """Serve ``/static/vendor/...`` from the bundle, ahead of pygeoapi's static."""
    if not _VENDOR.is_dir():
        LOGGER.warning(
            "front-end libraries missing from %s: HTML pages will lack styles and "
            "maps (run scripts/build-assets)",
            _VENDOR,
        )

    @app.get("/static/vendor/<path:filename>")
    def vendor_asset(filename: str) -> Response:
        return send_from_directory(_VENDOR, filename)

    @app.get("/static/sdi/<path:filename>")
    def sdi_asset(filename: str) -> Response:
        # sdi's own page scripts and styles (in git), see sdi/api/templates.
        return send_from_directory(_OWN_STATIC, filename)


def _with_our_templates(function: ApiFunction) -> ApiFunction:
    """``function``, rendering its HTML with sdi's templates too.

    pygeoapi 0.24 renders the TileMatrixSets pages with ``api.tpl_config`` (the
    whole configuration) where the template settings belong, so they miss
    ``server.templates`` and fall back to pygeoapi's ``_base.html``, which loads
    Bootstrap from a CDN. A top-level ``path`` in that copy of the
    configuration (idempotent; nothing else reads it) points them at ours.
    """

    def call(
        api: API, api_request: APIRequest, *args: Any
    ) -> tuple[dict[str, Any], int, Content]:
        api.tpl_config.setdefault("path", api.config["server"]["templates"]["path"])
        return function(api, api_request, *args)

    return call


def _register_routes(app: Flask) -> None:
    @app.get("/")
    def landing_page() -> Response:
        return _execute(core_api.landing_page)

    @app.get("/openapi")
    def openapi() -> Response:
        return _execute(core_api.openapi_)

    @app.get("/conformance")
    def conformance() -> Response:
        # Exactly the classes sdi passes (sdi.api.conformance).
        return _execute(conformance_.conformance)

    @app.get("/TileMatrixSets")
    def tilematrixsets() -> Response:
        return _execute(_with_our_templates(tiles_api.tilematrixsets))

    @app.get("/TileMatrixSets/<tms_id>")
    def tilematrixset(tms_id: str) -> Response:
        return _execute(_with_our_templates(tiles_api.tilematrixset), tms_id)

    @app.get("/processes")
    def processes() -> Response:
        return _execute(processes_api.describe_processes, None)

    @app.get("/collections")
    def collections() -> Response:
        return _execute(collections_.describe_collections, None)

    @app.get("/collections/<collection_id>")
    def collection(collection_id: str) -> Response:
        return _execute(collections_.describe_collections, collection_id)

    @app.get("/collections/<collection_id>/schema")
    def collection_schema(collection_id: str) -> Response:
        return _execute(core_api.get_collection_schema, collection_id)

    @app.get("/collections/<collection_id>/queryables")
    def collection_queryables(collection_id: str) -> Response:
        return _execute(itemtypes_api.get_collection_queryables, collection_id)

    @app.get("/collections/<collection_id>/items")
    def collection_items(collection_id: str) -> Response:
        # sdi's handler (sdi.api.features); pygeoapi's for other collections
        # and formats, which validates the format itself (dataset formatters).
        return _execute(features.get_items, collection_id, skip_valid_check=True)

    @app.get("/collections/<collection_id>/items/<item_id>")
    def collection_item(collection_id: str, item_id: str) -> Response:
        return _execute(features.get_item, collection_id, item_id)


def _register_feature_routes(app: Flask) -> None:
    """Versions of vector layers and the changes between them (sdi.api.features)."""

    @app.get("/collections/<collection_id>/versions")
    def collection_versions(collection_id: str) -> Response:
        return _execute(version_list.get_versions, collection_id)

    @app.get("/collections/<collection_id>/changes")
    def collection_changes(collection_id: str) -> Response:
        return _execute(features.get_changes, collection_id)


def _register_raster_routes(app: Flask) -> None:
    """Coverages and map tiles of raster layers (:mod:`sdi.api.rasters`)."""

    @app.get("/collections/<collection_id>/coverage")
    def collection_coverage(collection_id: str) -> Response:
        # f=GTiff is not one of pygeoapi's formats: the handler checks f itself.
        return _execute(rasters.get_coverage, collection_id, skip_valid_check=True)

    @app.get("/collections/<collection_id>/coverage/domainset")
    def collection_coverage_domainset(collection_id: str) -> Response:
        return _execute(rasters.get_coverage_domainset, collection_id)

    @app.get("/collections/<collection_id>/coverage/rangetype")
    def collection_coverage_rangetype(collection_id: str) -> Response:
        return _execute(rasters.get_coverage_rangetype, collection_id)

    @app.get("/collections/<collection_id>/map/tiles")
    def collection_map_tilesets(collection_id: str) -> Response:
        return _execute(rasters.get_map_tilesets, collection_id)

    @app.get("/collections/<collection_id>/map/tiles/<tms>")
    def collection_map_tileset(collection_id: str, tms: str) -> Response:
        return _execute(rasters.get_map_tileset, collection_id, tms)

    @app.get("/collections/<collection_id>/map/tiles/<tms>/<int:z>/<int:y>/<int:x>")
    def collection_map_tile(
        collection_id: str, tms: str, z: int, y: int, x: int
    ) -> Response:
        return _execute(
            rasters.get_map_tile, collection_id, tms, z, y, x, skip_valid_check=True
        )


def _register_vector_tile_routes(app: Flask) -> None:
    """Vector tiles (MVT) of vector layers: OGC API - Tiles (:mod:`sdi.api.vtiles`)."""

    @app.get("/collections/<collection_id>/tiles")
    def collection_vector_tilesets(collection_id: str) -> Response:
        return _execute(vtiles.get_vector_tilesets, collection_id)

    @app.get("/collections/<collection_id>/tiles/<tms>")
    def collection_vector_tileset(collection_id: str, tms: str) -> Response:
        return _execute(vtiles.get_vector_tileset, collection_id, tms)

    @app.get("/collections/<collection_id>/tiles/<tms>/<z>/<y>/<x>")
    def collection_vector_tile(
        collection_id: str, tms: str, z: str, y: str, x: str
    ) -> Response:
        # f=mvt: the handler checks f itself.
        return _execute(
            vtiles.get_vector_tile, collection_id, tms, z, y, x, skip_valid_check=True
        )


def _register_cors(app: Flask) -> None:
    @app.after_request
    def allow_any_origin(response: Response) -> Response:
        live = live_api()
        api = live.peek()
        if api is None and request.method == "OPTIONS":
            # A preflight may come first: it needs the configuration too.
            try:
                api = live.current()
            except SdiError:
                api = None
        if api is not None and api.config["server"].get("cors"):
            response.headers["Access-Control-Allow-Origin"] = "*"
            security.allow_preflight(response)
        return response

    @app.after_request
    def keyed_responses_are_private(response: Response) -> Response:
        # What a key opens must not land in a shared cache.
        if presented_key() is not None:
            cache = response.headers.get("Cache-Control", "")
            parts = [p.strip() for p in cache.split(",") if p.strip()]
            parts = [p for p in parts if p not in ("public", "immutable")]
            response.headers["Cache-Control"] = ", ".join(["private", *parts])
            response.vary.add(API_KEY_HEADER)
        return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(SdiError)
    def sdi_error(exc: SdiError) -> Response:
        error_log.log_error(exc.status, exc.code, exc.message)
        return _ogc_error(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _OGC_CODES.get(status, "NoApplicableCode")
        error_log.log_error(status, code, exc.description or "")
        response = _ogc_error(
            status, code, exc.description or HTTPStatus(status).phrase
        )
        if status == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        LOGGER.exception("unhandled error on %s", request.path)
        return _ogc_error(
            500, "NoApplicableCode", "Internal error; it has been logged."
        )


def create_app(
    settings: Settings, *, reload_interval: float = RELOAD_INTERVAL_S
) -> Flask:
    """The OGC API app for ``settings`` (no database access until a request)."""
    _check_database_env(settings)
    l10n_scope.install()
    outputs.install()
    error_log.install()
    app = Flask(__name__, static_folder=str(_STATIC), static_url_path="/static")
    bodies.install(app, settings)
    caching.install(app, settings)
    security.register(app, settings)
    app.url_map.strict_slashes = False
    app.config["JSON_AS_ASCII"] = False
    app.extensions[EXTENSION_KEY] = LiveApi(settings, interval=reload_interval)
    render_limit.install(app, settings)
    _register_vendor(app)
    _register_routes(app)
    _register_raster_routes(app)
    _register_feature_routes(app)
    _register_vector_tile_routes(app)
    _register_cors(app)
    _register_errors(app)
    return app
