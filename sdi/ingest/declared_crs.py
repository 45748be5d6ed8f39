"""Catch a file whose declared CRS GDAL dropped without a word.

GDAL does not fail on a CRS it cannot read: a GeoJSON whose ``crs`` member
names ``EPSG::99999`` opens as WGS 84 (the GeoJSON default), and a Shapefile
whose ``.prj`` is unreadable opens with no CRS at all (refused, but as if the
``.prj`` were missing). This module looks at what the file itself declares.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pyproj import CRS
from pyproj.exceptions import CRSError

from sdi.errors import IngestError

__all__ = ["check_declared_crs"]

_HEAD = 1 << 20
# The "crs" member of a GeoJSON (2008 spec): {"type": "name", "properties":
# {"name": "..."}}. GDAL reads it from the top level; writers put it first.
_GEOJSON_CRS = re.compile(
    rb'"crs"\s*:\s*\{[^{}]*"properties"\s*:\s*\{[^{}]*"name"\s*:\s*("(?:[^"\\]|\\.)*")'
)
_HINT = "e.g. --crs EPSG:2326 for Hong Kong 1980 Grid"


def _unreadable(text: str) -> bool:
    try:
        CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError):
        return True
    return False


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(kind: str, path: Path, prj: Path | None, crs_wkt: str) -> str | None:
    if kind == "shapefile" and prj is not None and not crs_wkt:
        text = prj.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return (
                f"its .prj file holds a coordinate reference system that PROJ "
                f"does not know ({_shown(text)!r})"
            )
    if kind == "geojson":
        with path.open("rb") as fh:
            found = _GEOJSON_CRS.search(fh.read(_HEAD))
        if found is not None:
            try:
                name = json.loads(found.group(1))
            except ValueError:
                return "its crs member cannot be read"
            if isinstance(name, str) and _unreadable(name):
                return f"it declares the CRS {_shown(name)!r}, which PROJ does not know"
    return None


def _prj(shp: Path) -> Path | None:
    want = (shp.stem + ".prj").casefold()
    for candidate in shp.parent.iterdir():
        if candidate.name.casefold() == want and candidate.is_file():
            return candidate
    return None


def check_declared_crs(
    kind: str, path: Path, crs_wkt: str, override: str | None
) -> list[str]:
    """Refuse (or, with ``override``, warn about) a CRS the file declares in vain.

    ``kind`` is the reader's format name (``shapefile``, ``geojson``, ...),
    ``crs_wkt`` the CRS GDAL made of the file. Returns warnings.
    """
    what = path.name
    prj = _prj(path) if kind == "shapefile" else None
    problem = _problem(kind, path, prj, crs_wkt)
    if problem is None:
        return []
    if override is None:
        raise IngestError(
            f"{what}: {problem}. Pass the CRS its coordinates are in, {_HINT}."
        )
    return [f"{what}: {problem}; the given CRS {override!r} was used."]
