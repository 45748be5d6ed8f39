"""How the ``sdi`` command reports a failure: one line, never a traceback.

Refusals (an :class:`~sdi.errors.SdiError`) print their message and exit 1;
anything unexpected prints one sentence and exits 70 (EX_SOFTWARE). The
traceback is printed only with ``sdi --debug`` (or ``SDI_DEBUG=1``).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import click
import psycopg

from sdi.errors import SdiError

__all__ = ["INTERNAL_ERROR", "CliGroup", "debug_from_env"]

LOGGER = logging.getLogger("sdi.cli")

#: Exit status of an unexpected error (sysexits.h EX_SOFTWARE).
INTERNAL_ERROR = 70


def debug_from_env(value: str | None) -> bool:
    """Whether ``SDI_DEBUG`` asks for tracebacks."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class _Refused(click.ClickException):
    """Bad input or a refused action: the user can fix it (exit 1)."""

    exit_code = 1


class _Failure(click.ClickException):
    """Something went wrong that the user did not cause (exit 70)."""

    exit_code = INTERNAL_ERROR


class CliGroup(click.Group):
    """A click group that turns every error of its commands into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; translate what it raises."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except SdiError as exc:
            LOGGER.info("refused: %s", exc.message, exc_info=_debug(ctx))
            raise _Refused(exc.message) from exc
        except psycopg.OperationalError as exc:
            _traceback(ctx)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise _Failure(
                f"The database could not do it: {first or type(exc).__name__}."
            ) from exc
        except Exception as exc:
            _traceback(ctx)
            raise _Failure(
                f"sdi stopped on an unexpected error ({type(exc).__name__}); this "
                "is a bug in sdi. Run again with `sdi --debug` (or SDI_DEBUG=1) "
                "to see the traceback."
            ) from exc


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.meta.get("sdi.debug"))


def _traceback(ctx: click.Context) -> None:
    """Print the traceback being handled, if asked for (to standard error)."""
    if _debug(ctx):
        click.echo(traceback.format_exc().rstrip(), err=True)
