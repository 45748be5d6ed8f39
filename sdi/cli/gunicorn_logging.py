"""gunicorn's logger for ``sdi serve``: API keys never reach the access log.

Clients that cannot set headers send their key as the ``api_key`` query
parameter (see :mod:`sdi.api.access`), and gunicorn's access log writes
request lines whole. This logger replaces the key's value with ``***`` in every
atom (request line, query string, environment) and the ``X-API-Key`` header.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn import glogging

__all__ = ["RedactingLogger", "redact"]

_KEY_IN_QUERY = re.compile(r"(?i)((?:^|[?&;])api_key=)[^&;\s]*")
_MASK = "***"


def redact(text: str) -> str:
    """``text`` with every ``api_key=...`` value masked."""
    return _KEY_IN_QUERY.sub(lambda m: m.group(1) + _MASK, text)


class RedactingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with API keys masked in the access log."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """gunicorn's log atoms, keys masked."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if isinstance(value, str) and "api_key=" in value.lower():
                atoms[name] = redact(value)
        if atoms.get("{x-api-key}i"):
            atoms["{x-api-key}i"] = _MASK
        return atoms
