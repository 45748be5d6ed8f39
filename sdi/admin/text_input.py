"""No NUL characters in the admin app's input: a 400 that says so.

PostgreSQL text cannot hold U+0000 and psycopg refuses such a value with a
``DataError``, so a NUL in any text field (a layer's title, a token's name, a
withdrawal's reason, the sign-in form's e-mail) or in the URL reached the
database and answered 500. :func:`init_app` refuses a NUL in the path, the
query string and, on every route but the uploads, the form or JSON body
(at most ``SDI_MAX_FORM_BYTES``, read by the CSRF check anyway); the upload
routes check their form fields with :func:`refuse_nul` once the caller is
checked, since their body is read only then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, request
from werkzeug.datastructures import MultiDict

from sdi.admin.bodies import is_upload_route
from sdi.errors import BadInputError

__all__ = ["init_app", "refuse_nul"]

NUL = "\x00"


def _error(where: str) -> BadInputError:
    return BadInputError(
        f"{where} contains a NUL character (\\0, %00), which cannot be stored. "
        "Remove it and try again."
    )


def _holds_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL in any string, key or element."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def refuse_nul(fields: MultiDict[str, str], what: str = "The field") -> None:
    """BadInputError naming the first field of ``fields`` with a NUL."""
    for name, value in fields.items(multi=True):
        if NUL in name or NUL in value:
            raise _error(f"{what} {name.replace(NUL, '')!r}")


def _json_fields(data: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(data, dict):
        return data.items()
    return [("body", data)]


def _refuse_nul_input() -> None:
    if NUL in request.path:
        raise _error("The address")
    refuse_nul(request.args, "The query parameter")
    if is_upload_route(current_app, request.endpoint):
        return  # its body is read after the caller is checked (queue_upload)
    if request.is_json:
        for name, value in _json_fields(request.get_json(silent=True)):
            if _holds_nul(name) or _holds_nul(value):
                raise _error(f"The field {str(name).replace(NUL, '')!r}")
    elif request.mimetype in (
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ):
        refuse_nul(request.form)


def init_app(app: Flask) -> None:
    """Refuse NUL characters in every request of ``app`` (after the body limits)."""
    app.before_request(_refuse_nul_input)
