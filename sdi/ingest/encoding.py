"""Which text encoding a Shapefile's ``.dbf`` (or a CSV file) is written in.

Order of evidence for a ``.dbf``: the user's choice, the ``.cpg`` file, the
DBF language driver byte, then a guess checked against every text value in
the file. Hong Kong data is often Big5 or Big5-HKSCS, which is not cp950:
HKSCS characters such as 𨋢 exist only in ``big5hkscs``.
"""

from __future__ import annotations

import codecs
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sdi.errors import IngestError

__all__ = [
    "EncodingChoice",
    "codec_name",
    "detect_dbf_encoding",
    "detect_text_encoding",
]

LOGGER = logging.getLogger(__name__)

EncodingSource = Literal["user", "cpg", "ldid", "guess"]
Chunks = Callable[[], Iterator[bytes]]

#: DBF language driver ids (byte 29 of the header) of the common code pages.
#: 0x57 ("ANSI") is left out on purpose: Esri writes it for "the Windows code
#: page of the machine", which in Hong Kong is usually 950, not Latin-1.
LDID_CODEPAGES: dict[int, str] = {
    0x01: "cp437",
    0x02: "cp850",
    0x03: "cp1252",
    0x04: "mac_roman",
    0x08: "cp865",
    0x0A: "cp850",
    0x0B: "cp437",
    0x13: "cp932",
    0x1C: "cp863",
    0x24: "cp860",
    0x26: "cp866",
    0x37: "cp850",
    0x40: "cp852",
    0x4D: "cp936",
    0x4E: "cp949",
    0x4F: "cp950",
    0x50: "cp874",
    0x58: "cp1252",
    0x59: "cp1252",
    0x64: "cp852",
    0x65: "cp866",
    0x66: "cp865",
    0x67: "cp861",
    0x6A: "cp737",
    0x6B: "cp857",
    0x78: "cp950",
    0x79: "cp949",
    0x7A: "cp936",
    0x7B: "cp932",
    0x7C: "cp874",
    0x86: "cp737",
    0x87: "cp852",
    0x88: "cp857",
    0xC8: "cp1250",
    0xC9: "cp1251",
    0xCA: "cp1254",
    0xCB: "cp1253",
    0xCC: "cp1257",
}

#: Encodings tried, in order, when nothing in the file names one.
GUESSES: tuple[str, ...] = ("utf-8", "big5hkscs", "cp950")

# Big5 variants whose text big5hkscs also decodes; a file declared as one of
# these but holding HKSCS characters is read as big5hkscs.
_BIG5_FAMILY = frozenset({"big5", "cp950", "big5hkscs"})
_CHUNK_BYTES = 8 * 1024 * 1024
_SEP = b"\x00"


@dataclass(frozen=True)
class EncodingChoice:
    """The encoding to read text with, where it came from, and any doubts."""

    encoding: str  # a Python codec name, e.g. "utf-8", "big5hkscs", "cp950"
    source: EncodingSource
    warnings: tuple[str, ...] = ()


def codec_name(label: str) -> str | None:
    """The Python codec for an encoding label as found in ``.cpg`` files.

    Understands codec names (``UTF-8``, ``Big5-HKSCS``), Windows code page
    numbers (``950``, ``ANSI 1252``, ``65001``) and ISO 8859 shorthands
    (``88591``). Returns None when the label means nothing known.
    """
    text = label.strip().strip("\ufeff").strip()
    if not text:
        return None
    upper = text.upper()
    for prefix in ("ANSI ", "OEM ", "CP", "WINDOWS-"):
        if upper.startswith(prefix) and upper[len(prefix) :].strip().isdigit():
            upper = upper[len(prefix) :].strip()
            break
    if upper == "65001":
        return "utf-8"
    if upper.startswith("8859") and upper[4:].lstrip("-_").isdigit():
        upper = f"ISO8859-{upper[4:].lstrip('-_')}"
    elif upper.isdigit():
        upper = f"CP{upper}"
    try:
        return codecs.lookup(upper).name
    except LookupError:
        return None


def _normalise_user(encoding: str) -> str:
    name = codec_name(encoding)
    if name is None:
        raise IngestError(
            f"Unknown text encoding {encoding!r}; use a name such as utf-8, "
            "big5hkscs, big5 or cp950."
        )
    return name


class _DecodeCheck:
    """Whether every chunk of text values decodes in one encoding.

    A value whose last character was cut off at the DBF field width (a lone
    lead byte) is forgiven and counted: GDAL drops the partial character.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.ok = True
        self.truncated = 0
        self.first_bad: bytes | None = None

    def feed(self, blob: bytes) -> None:
        if not self.ok:
            return
        pos = 0
        while pos < len(blob):
            try:
                blob[pos:].decode(self.encoding)
                return
            except UnicodeDecodeError as exc:
                end = blob.find(_SEP, pos + exc.start)
                end = len(blob) if end < 0 else end
                if end - (pos + exc.start) <= 3 and end - (pos + exc.end) <= 2:
                    self.truncated += 1
                    pos = end + 1
                    continue
                start = blob.rfind(_SEP, 0, pos + exc.start) + 1
                self.first_bad = blob[start:end][:80]
                self.ok = False
                return


def _dbf_text_chunks(dbf: Path) -> Iterator[bytes]:
    """The non-ASCII text of a ``.dbf`` (field names and character values).

    Yields blobs of values separated by NUL bytes, read in bounded chunks so
    a large file is scanned whole without being held in memory.
    """
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise IngestError(f"{dbf.name} is not a valid .dbf file (too short).")
        n_records, header_len, record_len = struct.unpack("<IHH", head[4:12])
        descriptors = fh.read(max(header_len - 32, 0))
        names: list[bytes] = []
        char_fields: list[tuple[int, int]] = []
        offset = 1  # byte 0 of each record is the deletion flag
        for i in range(0, len(descriptors) - 31, 32):
            desc = descriptors[i : i + 32]
            if desc[0] == 0x0D:
                break
            names.append(desc[:11].split(b"\x00", 1)[0])
            width = desc[16]
            if desc[11:12] in (b"C", b"c"):
                width += desc[17] << 8  # Clipper-style wide character fields
                char_fields.append((offset, width))
            offset += width
        header_text = [n for n in names if not n.isascii()]
        if header_text:
            yield _SEP.join(header_text)
        if not char_fields or record_len <= 0:
            return
        fh.seek(header_len)
        per_chunk = max(1, _CHUNK_BYTES // record_len)
        remaining = n_records
        while remaining > 0:
            raw = fh.read(min(per_chunk, remaining) * record_len)
            count = len(raw) // record_len
            if count == 0:
                break
            remaining -= count
            records = np.frombuffer(raw[: count * record_len], dtype=np.uint8).reshape(
                count, record_len
            )
            for start, width in char_fields:
                if start + width > record_len:
                    continue
                column = records[:, start : start + width]
                high = (column >= 0x80).any(axis=1)
                if not high.any():
                    continue
                values = np.ascontiguousarray(column[high]).view(f"S{width}").ravel()
                yield _SEP.join(v.rstrip(b" ") for v in values.tolist())


def _text_file_chunks(path: Path) -> Iterator[bytes]:
    """A text file's non-ASCII lines, in bounded chunks."""
    with path.open("rb") as fh:
        lines: list[bytes] = []
        size = 0
        for line in fh:
            if line.isascii():
                continue
            line = line.rstrip(b"\r\n")
            lines.append(line)
            size += len(line)
            if size >= _CHUNK_BYTES:
                yield _SEP.join(lines)
                lines, size = [], 0
        if lines:
            yield _SEP.join(lines)


def _check(chunks: Chunks, candidates: tuple[str, ...]) -> list[_DecodeCheck]:
    checks = [_DecodeCheck(c) for c in candidates]
    for blob in chunks():
        alive = [c for c in checks if c.ok]
        if not alive:
            break
        for check in alive:
            check.feed(blob)
    return checks


def _truncation_warning(check: _DecodeCheck) -> tuple[str, ...]:
    if not check.truncated:
        return ()
    return (
        f"{check.truncated} text value(s) end with a character cut in half at "
        "the field width; the partial character was dropped.",
    )


def _verify(
    chunks: Chunks, encoding: str, source: EncodingSource, what: str
) -> EncodingChoice:
    """Check a declared encoding; fall back to big5hkscs for Big5 variants."""
    candidates: tuple[str, ...] = (encoding,)
    if encoding in _BIG5_FAMILY and encoding != "big5hkscs":
        candidates = (encoding, "big5hkscs")
    checks = _check(chunks, candidates)
    if checks[0].ok:
        return EncodingChoice(encoding, source, _truncation_warning(checks[0]))
    if len(checks) > 1 and checks[1].ok:
        return EncodingChoice(
            "big5hkscs",
            source,
            (
                f"{what} says {encoding}, but the text holds characters only "
                "Big5-HKSCS has; read as big5hkscs.",
                *_truncation_warning(checks[1]),
            ),
        )
    bad = checks[0].first_bad or b""
    if source == "user":
        raise IngestError(
            f"The text is not valid {encoding}: {bad!r} cannot be decoded. "
            "Choose another encoding (utf-8, big5hkscs, cp950) or leave it "
            "out to let sdi detect it."
        )
    LOGGER.info("%s: %s does not decode %r; guessing", what, encoding, bad)
    return _guess(
        chunks,
        prefix=f"{what} says {encoding}, but {bad!r} is not valid {encoding}; ",
    )


def _guess(chunks: Chunks, *, prefix: str = "") -> EncodingChoice:
    checks = _check(chunks, GUESSES)
    for check in checks:
        if not check.ok:
            continue
        warnings = list(_truncation_warning(check))
        if check.encoding != "utf-8" or prefix:
            warnings.insert(
                0,
                f"{prefix}the text encoding was guessed as {check.encoding}; "
                "if names look wrong, upload again choosing the encoding.",
            )
        return EncodingChoice(check.encoding, "guess", tuple(warnings))
    return EncodingChoice(
        "latin-1",
        "guess",
        (
            f"{prefix}the text is not UTF-8, Big5-HKSCS or cp950; it was read "
            "as latin-1 and may look wrong: upload again choosing the encoding.",
        ),
    )


def detect_dbf_encoding(
    dbf: Path, *, user_choice: str | None = None, cpg: Path | None = None
) -> EncodingChoice:
    """The encoding of a Shapefile's ``.dbf`` and where the evidence came from.

    ``user_choice`` wins (and must decode the file); then the ``.cpg`` file
    (``cpg``, or the ``.cpg`` next to ``dbf``), then the language driver byte,
    then a checked guess: UTF-8, Big5-HKSCS, cp950, finally latin-1 with a
    warning. A declared Big5 or cp950 that fails on HKSCS characters becomes
    big5hkscs.
    """

    def chunks() -> Iterator[bytes]:
        return _dbf_text_chunks(dbf)

    if user_choice:
        return _verify(chunks, _normalise_user(user_choice), "user", "")
    cpg = cpg if cpg is not None else _sibling(dbf, ".cpg")
    warnings: list[str] = []
    if cpg is not None and cpg.is_file():
        label = cpg.read_bytes()[:100].decode("ascii", "replace")
        name = codec_name(label)
        if name is not None:
            return _verify(chunks, name, "cpg", cpg.name)
        warnings.append(f"{cpg.name} names an unknown encoding {label.strip()!r}.")
    with dbf.open("rb") as fh:
        head = fh.read(32)
    ldid = head[29] if len(head) >= 30 else 0
    if ldid in LDID_CODEPAGES:
        choice = _verify(
            chunks,
            LDID_CODEPAGES[ldid],
            "ldid",
            f"The .dbf language driver byte (0x{ldid:02X})",
        )
    else:
        choice = _guess(chunks)
    if warnings:
        return EncodingChoice(
            choice.encoding, choice.source, (*warnings, *choice.warnings)
        )
    return choice


def detect_text_encoding(
    path: Path, *, user_choice: str | None = None
) -> EncodingChoice:
    """The encoding of a text file such as a CSV: the user's choice or a guess."""

    def chunks() -> Iterator[bytes]:
        return _text_file_chunks(path)

    if user_choice:
        return _verify(chunks, _normalise_user(user_choice), "user", "")
    return _guess(chunks)


def _sibling(path: Path, suffix: str) -> Path | None:
    """The file next to ``path`` with another extension, in any letter case."""
    want = (path.stem + suffix).casefold()
    for candidate in path.parent.iterdir():
        if candidate.name.casefold() == want and candidate.is_file():
            return candidate
    return None
