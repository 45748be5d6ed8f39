"""``sdi agency`` and ``sdi user``: departments and their people."""

from __future__ import annotations

import click

from sdi import registry
from sdi.cli.context import connect
from sdi.errors import SdiError
from sdi.settings import Settings

__all__ = ["agency", "user"]


@click.group()
def agency() -> None:
    """Manage agencies (departments)."""


@agency.command(name="create")
@click.argument("code")
@click.option("--name", "name_en", required=True, help="English name.")
@click.option("--name-zh", default="", help="Traditional Chinese name.")
@click.option("--email", default="", help="Contact e-mail.")
@click.pass_obj
def agency_create(
    settings: Settings, code: str, name_en: str, name_zh: str, email: str
) -> None:
    """Register an agency with a short CODE (e.g. landsd)."""
    with connect(settings) as conn:
        registry.create_agency(conn, code, name_en, name_zh, email)
    click.echo(f"created agency {code}")


@agency.command(name="list")
@click.pass_obj
def agency_list(settings: Settings) -> None:
    """List agencies."""
    with connect(settings) as conn:
        for a in registry.list_agencies(conn):
            click.echo(f"{a.code}\t{a.name_en}\t{a.name_zh}")


@click.group()
def user() -> None:
    """Manage users of the admin app."""


@user.command(name="create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["platform_admin", "agency_admin", "agency_editor"]),
    required=True,
)
@click.option("--agency", "agency_code", help="Agency code (agency roles).")
@click.option("--name", default="", help="Display name.")
@click.password_option(help="Password (prompted when omitted).")
@click.pass_obj
def user_create(
    settings: Settings,
    email: str,
    role: str,
    agency_code: str | None,
    name: str,
    password: str,
) -> None:
    """Create a user who signs in with EMAIL (the password must be hard to guess)."""
    with connect(settings) as conn:
        try:
            owner = registry.get_agency(conn, agency_code) if agency_code else None
            registry.create_user(conn, email, password, role, agency=owner, name=name)
        except SdiError as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"created user {email.lower()} ({role})")
