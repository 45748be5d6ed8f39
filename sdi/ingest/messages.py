"""Keep server paths out of the messages users read.

An upload is read from a spool or work directory on the server; GDAL's and
Python's messages name the full path. Users know their file by its name.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["hide_paths"]


def hide_paths(message: str, *roots: Path) -> str:
    """``message`` with every path under one of ``roots`` cut to its file name.

    GDAL's virtual prefixes (``/vsizip/``) go with them.
    """
    for root in roots:
        for form in {str(root), str(root.resolve())}:
            if not form or form == "/":
                continue
            prefix = r"(?:/vsi[a-z]+/)?" + re.escape(form.rstrip("/"))
            pattern = prefix + r"/[^\s'\",:;)]*"
            message = re.sub(
                pattern, lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], message
            )
    return message
