"""``sdi ingest``, ``sdi publish`` and friends: layers and their versions."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from sdi import registry
from sdi.cli.context import connect
from sdi.errors import NotFoundError, SdiError
from sdi.ingest.dispatch import ingest_upload
from sdi.ingest.raster import is_raster_file
from sdi.publish import write_collections
from sdi.publish.actions import publish_layer, unpublish_layer, withdraw_version
from sdi.publish.actions import rollback as rollback_layer
from sdi.registry.models import Version
from sdi.registry.withdrawal import carried_forward
from sdi.settings import Settings

__all__ = ["ingest", "layers", "publish", "rollback", "unpublish", "versions"]


def _stdout() -> Console:
    """Rich output; wide when piped, so tables are not cut to 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


@click.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--layer", "slug", required=True, help="Layer id, e.g. landsd_buildings.")
@click.option("--agency", help="Owning agency code (needed to register a new layer).")
@click.option("--licence", default="hk-csdi", show_default=True, help="Licence code.")
@click.option("--title", help="English title (new layer; default: from the id).")
@click.option("--title-zh", default="", help="Traditional Chinese title.")
@click.option("--abstract", default="", help="English abstract.")
@click.option("--abstract-zh", default="", help="Traditional Chinese abstract.")
@click.option("--keyword", "keywords", multiple=True, help="Keyword (repeatable).")
@click.option("--key-column", help="Attribute identifying a feature across versions.")
@click.option("--restricted", is_flag=True, help="Register the layer as restricted.")
@click.option("--source-layer", help="Layer inside a GeoPackage / FileGDB.")
@click.option("--encoding", help="Text encoding of a .dbf or CSV (e.g. big5hkscs).")
@click.option("--crs", help="CRS when the file has none, e.g. EPSG:2326.")
@click.option("--x-field", help="CSV column with longitude / easting.")
@click.option("--y-field", help="CSV column with latitude / northing.")
@click.option("--publish", "do_publish", is_flag=True, help="Publish the new version.")
@click.pass_obj
def ingest(
    settings: Settings,
    file: Path,
    slug: str,
    agency: str | None,
    licence: str,
    title: str | None,
    title_zh: str,
    abstract: str,
    abstract_zh: str,
    keywords: tuple[str, ...],
    key_column: str | None,
    restricted: bool,
    source_layer: str | None,
    encoding: str | None,
    crs: str | None,
    x_field: str | None,
    y_field: str | None,
    do_publish: bool,
) -> None:
    """Load FILE as the next version of a layer (registering the layer if new).

    FILE: zipped Shapefile, GeoPackage, GeoJSON, CSV, or zipped FileGDB; or a
    GeoTIFF (.tif, or a zip holding one) for a raster layer.
    """
    console = Console(stderr=True)
    raster = is_raster_file(file)
    # One transaction: a file that fails to load leaves no new layer behind.
    with connect(settings) as conn:
        with conn.transaction():
            registered: str | None = None
            try:
                layer = registry.get_layer(conn, slug)
            except NotFoundError:
                if not agency:
                    raise click.ClickException(
                        f"Layer {slug!r} is new: name its owner with --agency."
                    ) from None
                owner = registry.get_agency(conn, agency)
                layer = registry.create_layer(
                    conn,
                    owner,
                    registry.LayerInput(
                        slug=slug,
                        title_en=title or slug.replace("_", " ").title(),
                        title_zh=title_zh,
                        abstract_en=abstract,
                        abstract_zh=abstract_zh,
                        keywords=list(keywords),
                        licence_id=registry.get_licence(conn, licence).id,
                        key_column=key_column,
                        visibility="restricted" if restricted else "public",
                        kind="raster" if raster else "vector",
                    ),
                )
                registered = owner.code
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                verb = "Converting" if raster else "Loading"
                task = bar.add_task(f"{verb} {file.name}", total=None)
                version = ingest_upload(
                    conn,
                    settings,
                    file,
                    layer=layer.slug,
                    source_layer=source_layer,
                    encoding=encoding,
                    crs=crs,
                    x_field=x_field,
                    y_field=y_field,
                    progress=lambda n, total: bar.update(
                        task, completed=n, total=total
                    ),
                )
            if registered:
                kind = "raster layer" if raster else "layer"
                console.print(f"Registered {kind} [bold]{slug}[/] for {registered}")
            click.echo(_describe(slug, version))
        # After the commit: publishing rewrites collections/ from the
        # committed registry, read in one snapshot.
        if do_publish:
            publish_layer(conn, settings, slug, version.number)
            click.echo(f"published {slug} version {version.number}")


def _describe(slug: str, version: Version) -> str:
    """One line saying what a new version holds."""
    if version.geometry_type == "Raster":
        grid = version.schema["raster"]
        return (
            f"{slug} version {version.number}: {grid['width']} x {grid['height']} "
            f"cells, {grid['count']} band(s) of {grid['bands'][0]['dtype']} "
            f"({version.source_crs}); COG of {version.report['cog_bytes']:,} bytes"
        )
    diff = version.diff
    return (
        f"{slug} version {version.number}: {version.feature_count} features "
        f"({version.geometry_type}, {version.source_crs}); "
        f"+{diff['added']} ~{diff['changed']} -{diff['removed']}; "
        f"{version.report.get('repaired', 0)} geometries repaired, "
        f"{version.report.get('empty', 0)} empty"
    )


@click.command()
@click.argument("slug", required=False)
@click.option(
    "--version", "number", type=int, help="Version to publish (default latest)."
)
@click.option("--all", "all_layers", is_flag=True, help="Only regenerate collections.")
@click.pass_obj
def publish(
    settings: Settings, slug: str | None, number: int | None, all_layers: bool
) -> None:
    """Publish a layer's version (or roll back to an earlier one).

    With --all (or no layer), regenerate every collection file from the registry.
    """
    with connect(settings) as conn:
        if slug and not all_layers:
            layer = publish_layer(conn, settings, slug, number)
            click.echo(f"published {slug} version {layer.published_version}")
        paths = write_collections(conn, settings)
    click.echo(f"{len(paths)} collection file(s) in {settings.collections_dir}")


@click.command()
@click.argument("slug")
@click.option(
    "--version",
    "number",
    type=int,
    help="Version to go back to (default: the one before the published one).",
)
@click.pass_obj
def rollback(settings: Settings, slug: str, number: int | None) -> None:
    """Publish an earlier version of a layer again (a pointer move, no copy)."""
    with connect(settings) as conn:
        layer = rollback_layer(conn, settings, slug, number)
    click.echo(f"rolled {slug} back to version {layer.published_version}")


@click.command()
@click.argument("slug")
@click.pass_obj
def unpublish(settings: Settings, slug: str) -> None:
    """Withdraw a layer from the API (its versions stay)."""
    with connect(settings) as conn:
        unpublish_layer(conn, settings, slug)
    click.echo(f"unpublished {slug}")


@click.group(invoke_without_command=True)
@click.pass_context
def layers(ctx: click.Context) -> None:
    """List the registered layers (``sdi layers withdraw`` takes a version down)."""
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    with connect(settings) as conn:
        table = Table("layer", "agency", "title", "licence", "visibility", "published")
        agencies = {a.id: a.code for a in registry.list_agencies(conn)}
        licences = {lic.id: lic.code for lic in registry.list_licences(conn)}
        for layer in registry.list_layers(conn):
            table.add_row(
                layer.slug,
                agencies[layer.agency_id],
                layer.title_en,
                licences[layer.licence_id],
                layer.visibility,
                str(layer.published_version or "-"),
            )
    _stdout().print(table)


@click.command()
@click.argument("slug")
@click.pass_obj
def versions(settings: Settings, slug: str) -> None:
    """Show a layer's version history with diff stats."""
    with connect(settings) as conn:
        layer = registry.get_layer(conn, slug)
        table = Table(
            "version",
            "created",
            "file",
            "features",
            "added",
            "changed",
            "removed",
            "repaired",
            "published",
        )
        for v in registry.list_versions(conn, layer.id):
            table.add_row(
                str(v.number),
                v.created_at.strftime("%Y-%m-%d %H:%M"),
                v.source_filename,
                str(v.feature_count),
                str(v.diff.get("added")),
                str(v.diff.get("changed")),
                str(v.diff.get("removed")),
                str(v.report.get("repaired", 0)),
                "withdrawn"
                if v.withdrawn
                else ("*" if v.number == layer.published_version else ""),
            )
    _stdout().print(table)


@layers.command()
@click.argument("slug")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option(
    "--reason",
    required=True,
    help="Why (kept in the audit log, shown in every 410 answer for the version).",
)
@click.option(
    "--by",
    "email",
    help="Platform admin's e-mail to record (checked); default: the operator.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def withdraw(
    settings: Settings,
    slug: str,
    number: int,
    reason: str,
    email: str | None,
    yes: bool,
) -> None:
    """Take VERSION of a layer down: delete its data, serve 410 Gone for it.

    For a version published in error (personal data, a wrong file). Its
    features (or raster file) are deleted, the API answers 410 with the
    reason for it; if it was published, the layer falls back to the newest
    earlier version. Features that a later version holds unchanged stay (they
    are that version's data too): the output says how many.
    """
    with connect(settings) as conn:
        try:
            by = registry.get_user_by_email(conn, email) if email else None
            if email and by is None:
                raise NotFoundError(f"No user {email!r}.")
            layer = registry.get_layer(conn, slug)
            following, carried = carried_forward(conn, layer, number)
            if not yes:
                note = (
                    f" {carried:,} of the features it added or changed are "
                    f"unchanged in version {following} and stay."
                    if following and carried
                    else ""
                )
                click.confirm(
                    f"Withdraw version {number} of {slug} and delete its data?{note}",
                    abort=True,
                )
            done = withdraw_version(
                conn, settings, slug, number, reason, by=by, actor="cli"
            )
        except SdiError as exc:
            raise click.ClickException(exc.message) from None
    result = done.to_json()
    click.echo(
        f"withdrew {slug} version {number}: {done.rows_deleted} rows deleted"
        + (
            f"; published version {done.published_before} -> "
            f"{done.published_after or 'unpublished'}"
            if done.published_after != done.published_before
            else ""
        )
    )
    if result["carried_forward"]:
        click.echo(
            f"{done.carried} of the features it added or changed are still in "
            f"version {done.carried_into} (unchanged there): withdraw it too if "
            "it holds the same bad data."
        )
