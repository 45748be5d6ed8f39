"""What PostgreSQL can hold, checked before a file is loaded.

A layer's rows live in one table: at most 1,600 columns (dropped ones
included), of which sdi uses 7, and a row must fit in one 8 kB page once its
long text values are moved out of line (each still leaves an 18-byte pointer).
Both were measured on PostgreSQL 16 with PostGIS: 1,593 attribute columns fit
and 1,594 do not; a row holds at most 994 non-null bigint or double precision
attributes (``row is too big: size 8168, maximum size 8160``) and at most 446
non-null long text ones. Text cannot hold a NUL character either.

Everything here raises :class:`~sdi.errors.IngestError` with a message for
the user; nothing here touches the database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import psycopg

from sdi.errors import IngestError
from sdi.ingest.source import Field

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ROW_BYTES",
    "check_fields",
    "check_no_nul",
    "database_limit_error",
]

#: PostgreSQL's columns per table.
MAX_TABLE_COLUMNS = 1600
#: Columns of every layer table that are sdi's own (see sdi.ingest.table).
SDI_COLUMNS = 7
#: Attributes one file may have.
MAX_ATTRIBUTES = MAX_TABLE_COLUMNS - SDI_COLUMNS
#: Largest row PostgreSQL stores (an 8 kB page less its headers).
MAX_ROW_BYTES = 8160
#: sdi's own columns and the tuple header, in a stored row (measured: 994 bigint
#: attributes fit, 995 do not, so the rest of the row takes 208 bytes at most).
_ROW_OVERHEAD = 208
#: Bytes a non-null value of each type takes at least (text can be NULL or an
#: empty string; long text moves out of line).
_MIN_WIDTH = {
    "bigint": 8,
    "double precision": 8,
    "timestamp": 8,
    "time": 8,
    "date": 4,
    "boolean": 1,
    "text": 0,
}
_CHUNK = 1 << 20


def check_fields(fields: Sequence[Field], what: str) -> None:
    """Refuse attributes a layer table cannot hold, before anything is loaded.

    Empty names (GDAL makes them of names that began with a NUL character),
    more attributes than a table has columns, and fixed-width attributes that
    cannot fit in one row together.
    """
    unnamed = [i + 1 for i, f in enumerate(fields) if not f.name.strip()]
    if unnamed:
        raise IngestError(
            f"{what} has an attribute without a name (attribute "
            f"{unnamed[0]} of {len(fields)}); name every attribute and upload "
            "again."
        )
    if len(fields) > MAX_ATTRIBUTES:
        raise IngestError(
            f"{what} has {len(fields)} attributes; a layer can hold at most "
            f"{MAX_ATTRIBUTES} (PostgreSQL's {MAX_TABLE_COLUMNS} columns per "
            f"table, less {SDI_COLUMNS} that sdi uses). Drop the attributes the "
            "layer does not need and upload again."
        )
    width = sum(_MIN_WIDTH.get(f.pg_type, 0) for f in fields)
    bitmap = math.ceil((len(fields) + SDI_COLUMNS) / 8)
    if width + bitmap + _ROW_OVERHEAD > MAX_ROW_BYTES:
        numeric = sum(1 for f in fields if _MIN_WIDTH.get(f.pg_type, 0) >= 4)
        raise IngestError(
            f"{what} has {len(fields)} attributes, {numeric} of them numbers, "
            f"dates or times that take {width:,} bytes per feature together; "
            f"PostgreSQL stores at most {MAX_ROW_BYTES:,} bytes per row. Drop "
            "the attributes the layer does not need and upload again."
        )


def database_limit_error(
    exc: psycopg.errors.ProgramLimitExceeded, what: str
) -> IngestError:
    """The user's version of a limit PostgreSQL hit while loading ``what``."""
    detail = exc.diag.message_primary or ""
    if detail.startswith("row is too big"):
        return IngestError(
            f"A feature of {what} is too wide to store: its attribute values "
            f"take more than the {MAX_ROW_BYTES:,} bytes PostgreSQL allows per "
            "row (long text values still take 18 bytes each). Drop attributes "
            "the layer does not need and upload again. Nothing was loaded."
        )
    return IngestError(
        f"{what} goes over a limit of PostgreSQL while loading ({detail}). "
        "Nothing was loaded."
    )


def check_no_nul(path: Path, kind: str, what: str) -> None:
    """Refuse a GeoJSON or CSV file holding a NUL character.

    GDAL reads names and values as C strings, so a NUL cuts them short
    without a word (``"na\\u0000me"`` becomes ``na``), and PostgreSQL text
    cannot hold one anyway. GeoJSON writes it as the escape ``\\u0000``, a
    CSV as the byte itself. Reads the file once, a megabyte at a time.
    """
    if kind == "geojson":
        where = _find_json_nul(path)
    elif kind == "csv":
        where = _find_csv_nul(path)
    else:
        return
    if where is None:
        return
    offset, in_name = where
    part = "an attribute name" if in_name else "a value"
    raise IngestError(
        f"{what} holds a NUL character (\\u0000) in {part}, at byte "
        f"{offset:,}; PostgreSQL cannot store it and GDAL would cut the text "
        "short there. Remove it and upload again."
    )


def _find_csv_nul(path: Path) -> tuple[int, bool] | None:
    """The offset of the first NUL byte and whether it is in the header line."""
    offset = 0
    header = True
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            i = chunk.find(b"\x00")
            if i >= 0:
                return offset + i, header and b"\n" not in chunk[:i]
            header = header and b"\n" not in chunk
            offset += len(chunk)
    return None


_ESCAPE = b"\\u0000"


def _find_json_nul(path: Path) -> tuple[int, bool] | None:
    """The offset of the first NUL (escaped or raw) and whether it is in a key."""
    keep = 64  # enough to see the escape whole and the backslashes before it
    offset = 0
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            data = tail + chunk
            base = offset - len(tail)
            raw = data.find(b"\x00")
            start = 0
            while (i := data.find(_ESCAPE, start)) >= 0 and (raw < 0 or i < raw):
                slashes = len(data[:i]) - len(data[:i].rstrip(b"\\"))
                if slashes % 2 == 0:  # not itself an escaped backslash
                    return base + i, _in_key(data[i + len(_ESCAPE) :])
                start = i + 1
            if raw >= 0:
                return base + raw, False
            offset += len(chunk)
            tail = data[-keep:]
    return None


def _in_key(rest: bytes) -> bool:
    """Whether the JSON string that ``rest`` continues is followed by a colon."""
    j = 0
    while j < len(rest):
        c = rest[j : j + 1]
        if c == b"\\":
            j += 2
            continue
        if c == b'"':
            return rest[j + 1 :].lstrip()[:1] == b":"
        j += 1
    return False  # the string runs past the chunk: call it a value
