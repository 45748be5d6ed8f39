"""The peers sdi is compared with, installed at bench time into their own venvs.

Never project dependencies: each peer gets a virtual environment under
``<data dir>/peers/<name>`` made with the base interpreter of sdi's venv
(Python 3.13) and ``pip install`` from PyPI, once; later runs reuse it while
its marker file names the same requirements.

- ``pygeoapi``: pygeoapi 0.24.0 with its PostgreSQL feature provider
  (SQLAlchemy, GeoAlchemy2, psycopg2) and the ``MVT-postgresql`` tile provider,
  served by gunicorn;
- ``tipg``: the latest tipg from PyPI, served by uvicorn.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "pygeoapi": (
        "pygeoapi==0.24.0", "gunicorn", "psycopg2-binary", "sqlalchemy",
        "geoalchemy2",
    ),
    "tipg": ("tipg", "uvicorn"),
}  # fmt: skip
_MARKER = ".sdi-bench-requirements"


def _base_python() -> str:
    """The interpreter sdi's venv was made from (3.13: pygeoapi needs >= 3.12)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}"
    base = base.with_name(f"python{sys.version_info[0]}.{sys.version_info[1]}")
    return str(base if base.exists() else sys.executable)


def venv(data_dir: Path, name: str, console: Console) -> Path:
    """The peer's venv directory, created and filled on first use."""
    root = data_dir / "peers" / name
    marker = root / _MARKER
    wanted = "\n".join(REQUIREMENTS[name]) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return root
    console.log(f"Installing {name} into {root} (once): {' '.join(REQUIREMENTS[name])}")
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([_base_python(), "-m", "venv", "--clear", str(root)], check=True)
    subprocess.run(
        [str(root / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         *REQUIREMENTS[name]],
        check=True,
    )  # fmt: skip
    marker.write_text(wanted)
    return root


def version(root: Path, package: str) -> str:
    """Installed version of ``package`` in a peer's venv."""
    done = subprocess.run(
        [str(root / "bin" / "python"), "-c",
         f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "?"


# -- pygeoapi configuration ---------------------------------------------------


def pygeoapi_config(
    *,
    url: str,
    port: int,
    db: dict[str, Any],
    tables: dict[str, str],
    count: bool,
    limit_max: int,
) -> dict[str, Any]:
    """A pygeoapi configuration serving ``tables`` (collection id -> table).

    ``db``: host, port, dbname, user (and password). ``count`` is the
    PostgreSQL provider's ``count`` option (default true: every page counts
    every matching row for ``numberMatched``). The buildings also get the
    ``MVT-postgresql`` tile provider.
    """
    resources: dict[str, Any] = {}
    for cid, table in tables.items():
        provider: dict[str, Any] = {
            "type": "feature",
            "name": "PostgreSQL",
            "data": db | {"search_path": ["public"]},
            "id_field": "id",
            "table": table,
            "geom_field": "geom",
        }
        if not count:
            provider["count"] = False
        providers = [provider]
        if table == "buildings":
            providers.append(
                {
                    "type": "tile",
                    "name": "MVT-postgresql",
                    "data": db | {"search_path": ["public"]},
                    "id_field": "id",
                    "table": table,
                    "geom_field": "geom",
                    "options": {"zoom": {"min": 0, "max": 16}},
                    "format": {
                        "name": "pbf",
                        "mimetype": "application/vnd.mapbox-vector-tile",
                    },
                }
            )
        resources[cid] = {
            "type": "collection",
            "title": cid,
            "description": f"Benchmark layer {table}",
            "keywords": ["bench"],
            "extents": {
                "spatial": {
                    "bbox": [113.8, 22.1, 114.5, 22.6],
                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                }
            },
            "providers": providers,
        }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US"],
            "cors": False,
            "pretty_print": False,
            "admin": False,
            "limits": {"default_items": 10, "max_items": limit_max},
            "map": {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "attribution": "OpenStreetMap",
            },
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "sdi serving benchmark",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://example.org"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {
                "name": "bench",
                "position": "bench",
                "url": "https://example.org",
            },
        },
        "resources": resources,
    }


def write_pygeoapi(
    root: Path, work: Path, name: str, config: dict[str, Any]
) -> dict[str, str]:
    """Write the config and its OpenAPI document; the server's environment."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / f"{name}.yml"
    openapi = work / f"{name}-openapi.yml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    env = {"PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(openapi)}
    done = subprocess.run(
        [str(root / "bin" / "pygeoapi"), "openapi", "generate", str(cfg),
         "--output-file", str(openapi)],
        capture_output=True, text=True, check=False, env=clean_env() | env,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {done.stderr[-2000:]}")
    return env


def clean_env() -> dict[str, str]:
    """This process's environment without sdi's and Python's variables."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SDI_", "PYTHON", "VIRTUAL_ENV"))
    }  # fmt: skip
