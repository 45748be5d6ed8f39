"""``sdi serve`` and ``sdi up``: run the OGC API and the admin app on one origin."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import click
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from sdi.cli.context import connect, resolve_database_url
from sdi.cli.db import start_embedded
from sdi.db import migrate
from sdi.settings import Settings, load_settings

__all__ = ["create_wsgi", "serve", "up", "wsgi_from_env"]


def create_wsgi(settings: Settings) -> Any:
    """The OGC API at ``/`` with the admin app mounted under ``/admin``.

    Each app honours X-Forwarded-For/-Proto from ``SDI_TRUSTED_PROXIES`` only
    (the admin app's factory wraps its own; the API's is wrapped here).
    """
    from sdi.admin import create_app as create_admin
    from sdi.admin.proxies import trust_proxies
    from sdi.api import create_app as create_api

    api = create_api(settings)
    admin = create_admin(settings)
    api.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        trust_proxies(api.wsgi_app, settings.trusted_proxies),
        {"/admin": admin.wsgi_app},
    )
    return api


def wsgi_from_env() -> Any:
    """gunicorn entry point: settings from the environment ``sdi serve`` prepared."""
    return create_wsgi(load_settings())


def _gunicorn(settings: Settings) -> None:
    """Replace this process with gunicorn serving :func:`wsgi_from_env`."""
    env = dict(os.environ)
    env["SDI_DATABASE_URL"] = resolve_database_url(settings)
    env["SDI_SECRET_KEY"] = settings.secret_key  # one key for every worker
    env["SDI_VAR_DIR"] = str(settings.var_dir)
    env["SDI_COLLECTIONS_DIR"] = str(settings.collections_dir)
    env["SDI_CONFIG_DIR"] = str(settings.config_dir)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    args = [
        gunicorn,
        "--bind",
        f"{settings.host}:{settings.port}",
        "--workers",
        str(settings.workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        *(["--access-logfile", settings.access_log] if settings.access_log else []),
        "--logger-class",
        "sdi.cli.gunicorn_logging.RedactingLogger",
        "sdi.cli.serve:wsgi_from_env()",
    ]
    click.echo(
        f"Serving the OGC API at {settings.public_url}/ and the admin app at "
        f"{settings.public_url}/admin/ (Ctrl-C stops)"
    )
    os.execve(gunicorn, args, env)  # noqa: S606 (no shell: argv is built here)


@click.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Serve the OGC API and the admin app with gunicorn (foreground)."""
    _gunicorn(settings)


@click.command()
@click.option("--no-demo", is_flag=True, help="Do not load the demo layers.")
@click.pass_obj
def up(settings: Settings, no_demo: bool) -> None:
    """Everything `make run` does: database, schema, demo data, then serve."""
    from sdi.demo import load_demo
    from sdi.publish import write_collections

    if not settings.database_url:
        start_embedded(settings)
    with connect(settings) as conn:
        for m in migrate(conn):
            click.echo(f"applied migration {m.version:04d}_{m.name}")
        if not no_demo:
            summary = load_demo(conn, settings)
            click.echo(str(summary))
        write_collections(conn, settings)
    _start_worker(settings)
    _gunicorn(settings)


def _start_worker(settings: Settings) -> None:
    """Start ``sdi worker`` beside the server.

    In our process group, so Ctrl-C stops both; it also stops by itself when
    this process (gunicorn, after the exec) is gone.
    """
    sdi = os.path.join(os.path.dirname(sys.executable), "sdi")
    env = dict(os.environ, SDI_DATABASE_URL=resolve_database_url(settings))
    subprocess.Popen([sdi, "worker", "--parent-pid", str(os.getpid())], env=env)
