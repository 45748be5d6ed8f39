"""``sdi db``: the embedded cluster and migrations."""

from __future__ import annotations

import click

from sdi.cli.context import connect, embedded_cluster
from sdi.db import ClusterError, migrate
from sdi.settings import Settings

__all__ = ["db"]


@click.group()
def db() -> None:
    """Manage the database: the embedded PostGIS cluster and the schema."""


def start_embedded(settings: Settings) -> None:
    """Initialise (once) and start the embedded cluster, creating the database."""
    cluster = embedded_cluster(settings)
    try:
        if cluster.init():
            click.echo(f"Initialised a PostGIS cluster in {cluster.data_dir}")
        if not cluster.running:
            cluster.start()
            click.echo(f"Started PostgreSQL on 127.0.0.1:{cluster.port}")
        cluster.ensure_database("sdi")
    except ClusterError as exc:
        raise click.ClickException(exc.message) from exc


@db.command()
@click.pass_obj
def init(settings: Settings) -> None:
    """Create the embedded cluster under SDI_VAR_DIR/pg (idempotent)."""
    if settings.database_url:
        raise click.ClickException(
            "SDI_DATABASE_URL is set: there is no cluster to init."
        )
    cluster = embedded_cluster(settings)
    try:
        ran = cluster.init()
    except ClusterError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo("initialised" if ran else f"already initialised: {cluster.data_dir}")


@db.command()
@click.pass_obj
def start(settings: Settings) -> None:
    """Start the embedded cluster (initialising it first if needed)."""
    if settings.database_url:
        click.echo("SDI_DATABASE_URL is set: using it, no cluster started.")
        return
    start_embedded(settings)


@db.command()
@click.pass_obj
def stop(settings: Settings) -> None:
    """Stop the embedded cluster."""
    cluster = embedded_cluster(settings)
    if not cluster.running:
        click.echo("The embedded cluster is not running.")
        return
    cluster.stop()
    click.echo("Stopped the embedded cluster.")


@db.command(name="migrate")
@click.pass_obj
def migrate_cmd(settings: Settings) -> None:
    """Apply pending schema migrations (idempotent)."""
    with connect(settings) as conn:
        applied = migrate(conn)
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
    else:
        click.echo("schema is up to date")


@db.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """Say which database is used and whether it is up."""
    if settings.database_url:
        click.echo("database: SDI_DATABASE_URL")
        return
    cluster = embedded_cluster(settings)
    state = "running" if cluster.running else "stopped"
    click.echo(f"embedded cluster {cluster.data_dir} on port {cluster.port}: {state}")
