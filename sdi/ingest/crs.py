"""Coordinate reference systems of uploaded files, and transformers to storage.

A file's CRS comes from the file (``.prj``, GeoPackage SRS table, ...) or from
the user. Esri ``.prj`` files rarely carry an EPSG code; they are identified
against the EPSG database so that the version records ``EPSG:2326`` and PROJ
picks the right datum transformation (for Hong Kong 1980 Grid to WGS 84 that
is EPSG:1825, the seven-parameter Helmert transformation, good to about 1 m).
"""

from __future__ import annotations

import functools
import logging

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from sdi.errors import IngestError

__all__ = [
    "MIN_CONFIDENCE",
    "crs_label",
    "identify",
    "is_ballpark",
    "parse_crs",
    "resolve_crs",
    "transformer_to",
]

LOGGER = logging.getLogger(__name__)

#: Lowest pyproj match confidence (0-100) at which a CRS without an authority
#: code is taken to be the EPSG one. 70 accepts Esri's renamed datums and
#: projections when every parameter matches.
MIN_CONFIDENCE = 70

_CRS_HINT = (
    "e.g. --crs EPSG:2326 for Hong Kong 1980 Grid or --crs EPSG:4326 for "
    "longitude/latitude (WGS 84)"
)


def parse_crs(text: str) -> CRS:
    """A CRS from the user: ``EPSG:2326``, ``2326``, a URN, WKT or PROJ string.

    Raises ``IngestError`` for anything PROJ does not know.
    """
    value = text.strip()
    if not value:
        raise IngestError(f"An empty CRS was given; pass one, {_CRS_HINT}.")
    try:
        crs = (
            CRS.from_epsg(int(value)) if value.isdigit() else CRS.from_user_input(value)
        )
    except (CRSError, ProjError, ValueError, TypeError) as exc:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise IngestError(
            f"Unknown or unreadable CRS {shown!r}; give an EPSG code, {_CRS_HINT}."
        ) from exc
    return identify(crs)


def identify(crs: CRS) -> CRS:
    """The EPSG CRS ``crs`` matches (Esri ``.prj`` names differ), else ``crs``.

    ``OGC:CRS84`` counts as EPSG:4326: coordinates are always handled in
    longitude, latitude order here.
    """
    if crs.to_authority() == ("OGC", "CRS84"):
        return CRS.from_epsg(4326)
    code = crs.to_epsg(min_confidence=MIN_CONFIDENCE)
    if code is None:
        return crs
    try:
        epsg = CRS.from_epsg(code)
    except CRSError:  # pragma: no cover - PROJ matched a code it cannot build
        return crs
    if crs.to_epsg(min_confidence=100) is None:
        LOGGER.info("identified CRS %r as EPSG:%d", crs.name, code)
    return epsg


def crs_label(crs: CRS) -> str:
    """``"EPSG:nnnn"`` when the CRS has an EPSG code, else its WKT."""
    code = crs.to_epsg(min_confidence=MIN_CONFIDENCE)
    return f"EPSG:{code}" if code is not None else crs.to_wkt()


def resolve_crs(
    file_crs: str | CRS | None, *, override: str | None = None, what: str = "The file"
) -> tuple[CRS, list[str]]:
    """The CRS to read a file in, and warnings for the version report.

    ``file_crs`` is what the file says (WKT, or empty/None when it has none);
    ``override`` is the user's choice and wins. A file without a CRS and no
    override is refused, telling the user to pass one.
    """
    warnings: list[str] = []
    found: CRS | None = None
    if isinstance(file_crs, CRS):
        found = identify(file_crs)
    elif file_crs:
        try:
            found = identify(CRS.from_user_input(file_crs))
        except (CRSError, ProjError) as exc:
            if override is None:
                raise IngestError(
                    f"{what} has a coordinate reference system PROJ cannot read "
                    f"({exc}); pass the right one, {_CRS_HINT}."
                ) from exc
            warnings.append(f"{what}'s own CRS could not be read ({exc}).")
    if override is not None:
        given = parse_crs(override)
        if found is not None and not given.equals(found, ignore_axis_order=True):
            warnings.append(
                f"{what} says its CRS is {_short(found)}; using the given "
                f"{_short(given)} instead."
            )
        return given, warnings
    if found is None:
        raise IngestError(
            f"{what} has no coordinate reference system (for a Shapefile: no "
            f".prj file). Pass the CRS its coordinates are in, {_CRS_HINT}."
        )
    return found, warnings


def _short(crs: CRS) -> str:
    code = crs.to_epsg(min_confidence=MIN_CONFIDENCE)
    return f"EPSG:{code}" if code is not None else repr(crs.name)


def transformer_to(source: CRS, srid: int) -> Transformer | None:
    """A transformer from ``source`` to EPSG:``srid`` in x/y (lon/lat) order.

    None when no transformation is needed. Cached: building one means a
    search of the PROJ database. PROJ picks the most accurate operation
    available; for EPSG:2326 to EPSG:4326 that is EPSG:1825.
    """
    return _transformer(source.to_wkt(), srid)


@functools.lru_cache(maxsize=64)
def _transformer(source_wkt: str, srid: int) -> Transformer | None:
    source = CRS.from_wkt(source_wkt)
    try:
        target = CRS.from_epsg(srid)
    except CRSError as exc:
        raise IngestError(f"Unknown storage CRS EPSG:{srid}.") from exc
    if source.equals(target, ignore_axis_order=True):
        return None
    try:
        transformer = Transformer.from_crs(source, target, always_xy=True)
    except (CRSError, ProjError) as exc:
        raise IngestError(
            f"No transformation from {_short(source)} to EPSG:{srid}: {exc}"
        ) from exc
    if is_ballpark(transformer):
        LOGGER.warning(
            "only a ballpark transformation from %s to EPSG:%d: %s",
            _short(source),
            srid,
            transformer.description,
        )
    return transformer


def is_ballpark(transformer: Transformer) -> bool:
    """Whether PROJ found no real datum transformation (errors of ~100 m)."""
    return "ballpark" in transformer.description.lower()
