"""gunicorn's logger for ``sdi serve``: API keys never reach the access log.

Clients that cannot set headers send their key as the ``api_key`` query
parameter (see :mod:`sdi.api.access`), and gunicorn's access log writes
request lines whole. This logger replaces the key's value with ``***`` in every
atom (request line, query string, environment) and the ``X-API-Key`` header.
The admin app's upload form without JavaScript sends its CSRF token as the
``csrf_token`` query parameter (``sdi.admin.bodies``): masked the same way.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn import glogging

__all__ = ["RedactingLogger", "redact"]

_KEY_IN_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:api_key|csrf_token)=)[^&;\s]*")
_MARKERS = ("api_key=", "csrf_token=")
_MASK = "***"


def redact(text: str) -> str:
    """``text`` with every ``api_key=...`` and ``csrf_token=...`` value masked."""
    return _KEY_IN_QUERY.sub(lambda m: m.group(1) + _MASK, text)


class RedactingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with API keys masked in the access log."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """gunicorn's log atoms, keys masked."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if isinstance(value, str) and any(m in value.lower() for m in _MARKERS):
                atoms[name] = redact(value)
        if atoms.get("{x-api-key}i"):
            atoms["{x-api-key}i"] = _MASK
        return atoms
