"""``sdi demo``: load the generated Hong Kong demo layers."""

from __future__ import annotations

import click

from sdi.cli.context import connect
from sdi.settings import Settings

__all__ = ["demo"]


@click.command()
@click.pass_obj
def demo(settings: Settings) -> None:
    """Load and publish the demo agencies, users and layers (idempotent)."""
    from sdi.demo import load_demo
    from sdi.publish import write_collections

    with connect(settings) as conn:
        summary = load_demo(conn, settings)
        write_collections(conn, settings)
    click.echo(str(summary))
