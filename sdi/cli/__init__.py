"""The ``sdi`` command: one click group, thin over registry, ingest and publish."""

from __future__ import annotations

import logging
import os

import click

from sdi.cli.accounts import agency, user
from sdi.cli.db import db
from sdi.cli.demo import demo
from sdi.cli.errors import CliGroup, debug_from_env
from sdi.cli.layers import ingest, layers, publish, rollback, unpublish, versions
from sdi.cli.serve import serve, up
from sdi.cli.worker import worker
from sdi.settings import load_settings

__all__ = ["cli", "main"]


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.option(
    "--debug",
    is_flag=True,
    help="Print the traceback of an unexpected error (also: SDI_DEBUG=1).",
)
@click.version_option(package_name="sdi")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """sdi: publish spatial data through OGC APIs.

    Settings come from SDI_* environment variables (see the README).
    """
    debug = debug or debug_from_env(os.environ.get("SDI_DEBUG"))
    ctx.meta["sdi.debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if verbose or debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        ctx.obj = load_settings()
    except ValueError as exc:  # a malformed SDI_* variable
        raise click.ClickException(str(exc)) from exc


for command in (
    db,
    ingest,
    publish,
    rollback,
    unpublish,
    layers,
    versions,
    agency,
    user,
    serve,
    up,
    demo,
    worker,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
