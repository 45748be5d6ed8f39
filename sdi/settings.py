"""Runtime settings, read once from ``SDI_*`` environment variables.

Build a :class:`Settings` with :func:`load_settings` and pass it down; nothing
in the package reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["SETTINGS_DOC", "Settings", "load_settings"]

#: Every setting, its environment variable and what it means (checked by a test
#: against the README so the documentation stays true).
SETTINGS_DOC: dict[str, str] = {
    "SDI_DATABASE_URL": "PostGIS to use (libpq URL). Unset: the embedded cluster "
    "under SDI_VAR_DIR/pg is started and used.",
    "SDI_VAR_DIR": "Directory for runtime state: embedded cluster, uploads, rasters "
    "(default: ./var).",
    "SDI_PG_PORT": "Port of the embedded cluster, bound to 127.0.0.1 (default 5433).",
    "SDI_HOST": "Address the server binds to (default 127.0.0.1).",
    "SDI_PORT": "Port the server binds to (default 5000).",
    "SDI_BASE_URL": "Public URL of the server (default http://SDI_HOST:SDI_PORT).",
    "SDI_WORKERS": "gunicorn worker processes (default 2).",
    "SDI_ACCESS_LOG": "gunicorn's access log: a file, `-` for standard output "
    "(default), `off` for none.",
    "SDI_STORAGE_SRID": "EPSG code layers are stored in (default 4326).",
    "SDI_COLLECTIONS_DIR": "Where generated collection files are written "
    "(default ./collections).",
    "SDI_CONFIG_DIR": "Hand-written pygeoapi configuration (default ./config).",
    "SDI_MAX_UPLOAD_BYTES": "Largest accepted upload (default 2 GiB).",
    "SDI_MAX_FORM_BYTES": "Largest request body the admin app accepts on any "
    "route but the two upload routes, and the OGC API on any route; larger "
    "bodies are refused with a 413 before they are read (default 1048576, "
    "i.e. 1 MiB).",
    "SDI_MAX_UNPACKED_BYTES": "Largest total size of a zip's contents (default 8 GiB).",
    "SDI_MAX_ZIP_MEMBERS": "Most files accepted in one zip (default 10000).",
    "SDI_MAX_ZIP_RATIO": "Largest compression ratio (unpacked size / packed size) "
    "of a zip, and of each member over 1 MiB unpacked; a zip above it is refused "
    "from its directory before anything is unpacked (default 200).",
    "SDI_SECRET_KEY": "Flask session signing key (default: random per start).",
    "SDI_POOL_MAX": "Largest number of database connections per process (default 8).",
    "SDI_LIMIT_DEFAULT": "Default page size of item requests (default 10).",
    "SDI_LIMIT_MAX": "Largest page size of item requests (default 10000).",
    "SDI_RASTER_DIR": "Where raster layers are kept as Cloud Optimized GeoTIFFs, "
    "one file per version (default: SDI_VAR_DIR/rasters).",
    "SDI_MAX_COVERAGE_CELLS": "Most cells (width x height x bands) one GeoTIFF or "
    "PNG coverage request may return; larger requests are refused with a 400 "
    "(default 16777216, i.e. 4096 x 4096 x 1).",
    "SDI_MAX_COVERAGE_JSON_CELLS": "Most cells one CoverageJSON (f=json) coverage "
    "request may return: a value costs about 16 times the time and 4.6 times the "
    "bytes of a GeoTIFF's (default 1048576, i.e. 1024 x 1024 x 1).",
    "SDI_MAX_COVERAGE_UPSAMPLE": "Most cells a coverage request may ask for per "
    "source cell along each axis (scale-size, scale-factor, scale-axes); more is "
    "refused with a 400 (default 2; 1 allows no up-sampling).",
    "SDI_MAX_RENDERS": "Coverage and map-tile renders run at once per worker "
    "process; half as many more (at least one) may wait (default 2).",
    "SDI_RENDER_WAIT_S": "Seconds a coverage or map-tile request waits for a "
    "render slot before a 503 with Retry-After (default 2).",
    "SDI_RENDER_HOLD_S": "Seconds a coverage or map-tile request may keep its "
    "render slot, rendering and sending its response, before the slot is "
    "reclaimed for the next request (a WARNING is logged; the response is still "
    "sent). Bounds how long clients that do not read can block renders "
    "(default 30).",
    "SDI_MAX_RASTER_CELLS": "Largest raster accepted for ingestion, in cells x "
    "bands, checked before any conversion (default 1000000000, e.g. a 31,623 x "
    "31,623 DEM, or 18,257 x 18,257 x 3 of imagery).",
    "SDI_BASEMAP_URL": "Tile URL template ({z}/{x}/{y}) of the basemap under the "
    "maps of the HTML pages, fetched by the browser. Unset (default): no basemap, "
    "features are drawn on a plain background with a scale.",
    "SDI_BASEMAP_ATTRIBUTION": "Attribution (HTML) shown with SDI_BASEMAP_URL's "
    "tiles (default empty).",
    "SDI_TRUSTED_PROXIES": "Addresses or CIDR networks of the reverse proxies in "
    "front of sdi, separated by commas (e.g. `127.0.0.1, 10.0.0.0/8`). Only a "
    "request whose immediate peer is one of them has its X-Forwarded-For and "
    "X-Forwarded-Proto honoured (the client's address is then used for sign-in "
    "back-off). Default empty: the headers are ignored.",
    "SDI_VERSION_MAX_AGE": "Seconds browsers and caches may keep a response for an "
    "explicit `version=` (Cache-Control max-age; default 86400, one day). A "
    "withdrawn or restricted version may be served from caches this long unless "
    "they are purged.",
}


@dataclass(frozen=True)
class Settings:
    """Everything the server, the CLI and the tests can configure."""

    database_url: str | None = None
    var_dir: Path = Path("var")
    pg_port: int = 5433
    host: str = "127.0.0.1"
    port: int = 5000
    base_url: str = ""
    workers: int = 2
    #: gunicorn's access log: a path, "-" for standard output, "" for none.
    access_log: str = "-"
    storage_srid: int = 4326
    collections_dir: Path = Path("collections")
    config_dir: Path = Path("config")
    max_upload_bytes: int = 2 * 1024**3
    max_form_bytes: int = 1024**2
    max_unpacked_bytes: int = 8 * 1024**3
    max_zip_members: int = 10_000
    max_zip_ratio: int = 200
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    pool_max: int = 8
    limit_default: int = 10
    limit_max: int = 10_000
    raster_root: Path | None = None
    max_coverage_cells: int = 4096 * 4096
    max_coverage_json_cells: int = 1024 * 1024
    max_coverage_upsample: float = 2.0
    max_renders: int = 2
    render_wait_s: float = 2.0
    render_hold_s: float = 30.0
    max_raster_cells: int = 1_000_000_000
    basemap_url: str = ""
    basemap_attribution: str = ""
    #: Networks of trusted reverse proxies (``SDI_TRUSTED_PROXIES``), normalised.
    trusted_proxies: tuple[str, ...] = ()
    version_max_age: int = 86_400

    @property
    def pg_dir(self) -> Path:
        """Data directory of the embedded cluster."""
        return self.var_dir / "pg"

    @property
    def upload_dir(self) -> Path:
        """Where uploads are spooled before ingestion."""
        return self.var_dir / "uploads"

    @property
    def raster_dir(self) -> Path:
        """Where raster versions are stored (``SDI_RASTER_DIR`` or ``var/rasters``)."""
        return self.raster_root or self.var_dir / "rasters"

    @property
    def public_url(self) -> str:
        """The server's public URL without a trailing slash."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def basemap_origin(self) -> str:
        """Where browsers fetch ``SDI_BASEMAP_URL``'s tiles, as a CSP source.

        ``https://tiles.example``; ``https://*.tile.example`` for a ``{s}``
        subdomain; the scheme alone (``https:``) when the host is another
        template; empty without a basemap or for one on this server.
        """
        parts = urlsplit(self.basemap_url.replace("{s}", "*"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return ""
        host = parts.netloc.rpartition("@")[2]
        wildcard = "*" in host and not (host.startswith("*.") and host.count("*") == 1)
        if wildcard or "{" in host or "}" in host:
            return f"{parts.scheme}:"
        return f"{parts.scheme}://{host}"

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {raw!r}")
    return value


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be above 0, not {value:g}")


def _non_negative(name: str, value: int) -> int:
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {value}")
    return value


def _access_log(value: str) -> str:
    value = value.strip()
    return "" if value.lower() in ("", "off", "none") else value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    found = []
    for item in (env.get(name) or "").replace(",", " ").split():
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise ValueError(
                f"{name} takes IP addresses or CIDR networks, not {item!r}"
            ) from exc
    return tuple(found)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``SDI_*`` variables (``os.environ`` by default)."""
    env = os.environ if env is None else env
    defaults = Settings()
    var_dir = Path(env.get("SDI_VAR_DIR") or "var").resolve()
    settings = Settings(
        database_url=env.get("SDI_DATABASE_URL") or None,
        var_dir=var_dir,
        pg_port=_int(env, "SDI_PG_PORT", defaults.pg_port),
        host=env.get("SDI_HOST") or defaults.host,
        port=_int(env, "SDI_PORT", defaults.port),
        base_url=env.get("SDI_BASE_URL") or "",
        workers=_int(env, "SDI_WORKERS", defaults.workers),
        access_log=_access_log(env.get("SDI_ACCESS_LOG", defaults.access_log)),
        storage_srid=_int(env, "SDI_STORAGE_SRID", defaults.storage_srid),
        collections_dir=Path(env.get("SDI_COLLECTIONS_DIR") or "collections").resolve(),
        config_dir=Path(env.get("SDI_CONFIG_DIR") or "config").resolve(),
        max_upload_bytes=_int(env, "SDI_MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
        max_form_bytes=_int(env, "SDI_MAX_FORM_BYTES", defaults.max_form_bytes),
        max_unpacked_bytes=_int(
            env, "SDI_MAX_UNPACKED_BYTES", defaults.max_unpacked_bytes
        ),
        max_zip_members=_int(env, "SDI_MAX_ZIP_MEMBERS", defaults.max_zip_members),
        max_zip_ratio=_int(env, "SDI_MAX_ZIP_RATIO", defaults.max_zip_ratio),
        secret_key=env.get("SDI_SECRET_KEY") or defaults.secret_key,
        pool_max=_int(env, "SDI_POOL_MAX", defaults.pool_max),
        limit_default=_int(env, "SDI_LIMIT_DEFAULT", defaults.limit_default),
        limit_max=_int(env, "SDI_LIMIT_MAX", defaults.limit_max),
        raster_root=(
            Path(env["SDI_RASTER_DIR"]).resolve() if env.get("SDI_RASTER_DIR") else None
        ),
        max_coverage_cells=_int(
            env, "SDI_MAX_COVERAGE_CELLS", defaults.max_coverage_cells
        ),
        max_coverage_json_cells=_int(
            env, "SDI_MAX_COVERAGE_JSON_CELLS", defaults.max_coverage_json_cells
        ),
        max_coverage_upsample=_float(
            env, "SDI_MAX_COVERAGE_UPSAMPLE", defaults.max_coverage_upsample
        ),
        max_renders=_int(env, "SDI_MAX_RENDERS", defaults.max_renders),
        render_wait_s=_float(env, "SDI_RENDER_WAIT_S", defaults.render_wait_s),
        render_hold_s=_float(env, "SDI_RENDER_HOLD_S", defaults.render_hold_s),
        max_raster_cells=_int(env, "SDI_MAX_RASTER_CELLS", defaults.max_raster_cells),
        basemap_url=env.get("SDI_BASEMAP_URL") or "",
        basemap_attribution=env.get("SDI_BASEMAP_ATTRIBUTION") or "",
        trusted_proxies=_networks(env, "SDI_TRUSTED_PROXIES"),
        version_max_age=_non_negative(
            "SDI_VERSION_MAX_AGE",
            _int(env, "SDI_VERSION_MAX_AGE", defaults.version_max_age),
        ),
    )
    for name, value in (
        ("SDI_MAX_COVERAGE_JSON_CELLS", settings.max_coverage_json_cells),
        ("SDI_MAX_RENDERS", settings.max_renders),
        ("SDI_RENDER_HOLD_S", settings.render_hold_s),
        ("SDI_MAX_RASTER_CELLS", settings.max_raster_cells),
    ):
        _positive(name, value)
    if settings.max_coverage_upsample < 1:
        raise ValueError("SDI_MAX_COVERAGE_UPSAMPLE must be 1 (none) or more")
    if settings.render_wait_s < 0:
        raise ValueError("SDI_RENDER_WAIT_S must be 0 or more")
    return settings
