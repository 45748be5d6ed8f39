"""The ``sdi`` command: one click group, thin over registry, ingest and publish."""

from __future__ import annotations

import logging

import click

from sdi.cli.accounts import agency, user
from sdi.cli.db import db
from sdi.cli.demo import demo
from sdi.cli.layers import ingest, layers, publish, rollback, unpublish, versions
from sdi.cli.serve import serve, up
from sdi.cli.worker import worker
from sdi.settings import load_settings

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(package_name="sdi")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """sdi: publish spatial data through OGC APIs.

    Settings come from SDI_* environment variables (see the README).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = load_settings()


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
