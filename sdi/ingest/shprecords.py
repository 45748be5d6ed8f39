"""Tell a Shapefile's null shapes from its damaged records.

GDAL hands back a feature without a geometry both for a record that says
"null shape" (type 0, legitimate) and for one it could not parse, and says
nothing about the latter: a damaged ``.shp`` would load as empty geometries
and "succeed". :class:`ShapeRecords` reads the record's header through the
``.shx`` index to tell which it is; it is only asked about the (rare)
features that came back without a geometry.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["ShapeRecords"]

_SHP_HEADER = 100
_NULL_SHAPE = 0


class ShapeRecords:
    """Random access to the record headers of one Shapefile."""

    def __init__(self, shp: Path, shx: Path) -> None:
        self._shp_path = shp
        self._shx_path = shx
        self._shp: BinaryIO | None = None
        self._shx: BinaryIO | None = None

    @classmethod
    def of(cls, shp: Path) -> ShapeRecords | None:
        """The records of the Shapefile ``shp`` (None without its ``.shx``)."""
        want = (shp.stem + ".shx").casefold()
        for candidate in shp.parent.iterdir():
            if candidate.name.casefold() == want and candidate.is_file():
                return cls(shp, candidate)
        return None

    def is_null_shape(self, fid: int) -> bool:
        """Whether record ``fid`` (0-based) is a well-formed null shape.

        False when it declares a shape, or when the index or the record
        cannot be read (a damaged file either way).
        """
        if self._shp is None or self._shx is None:
            self._shp = self._shp_path.open("rb")
            self._shx = self._shx_path.open("rb")
        self._shx.seek(_SHP_HEADER + 8 * fid)
        entry = self._shx.read(8)
        if len(entry) != 8:
            return False
        offset_words, length_words = struct.unpack(">ii", entry)
        if offset_words < _SHP_HEADER // 2 or length_words < 2:
            return False
        self._shp.seek(offset_words * 2 + 8)  # past the record number and length
        content = self._shp.read(4)
        return len(content) == 4 and struct.unpack("<i", content)[0] == _NULL_SHAPE

    def close(self) -> None:
        """Close the files (if they were opened)."""
        for fh in (self._shp, self._shx):
            if fh is not None:
                fh.close()
        self._shp = self._shx = None
