"""What a reader hands the loader: the file's description and batches of rows.

Readers (``sdi.ingest.read``) produce a :class:`Source`; the loader
(``sdi.ingest.load``) consumes it inside one database transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["PG_TYPES", "Batch", "Field", "Source", "SourceInfo"]

#: The PostgreSQL types an attribute can be stored as.
PG_TYPES = frozenset(
    {"text", "bigint", "double precision", "boolean", "date", "timestamp", "time"}
)


@dataclass(frozen=True)
class Field:
    """One attribute: its name exactly as in the file, and its PostgreSQL type."""

    name: str
    pg_type: str


@dataclass
class SourceInfo:
    """What is known of a file before its features are read."""

    format: str  # GDAL driver name: "ESRI Shapefile", "GPKG", "GeoJSON", "CSV", ...
    layer: str | None  # the layer read, for multi-layer formats
    crs: str  # source CRS as "EPSG:nnnn" when it has a code, else WKT
    encoding: str | None  # text encoding of attributes (Shapefile .dbf, CSV)
    fields: list[Field]
    geometry_type: str  # as the file declares it ("Point", "Polygon", "Unknown", ...)
    feature_count: int | None  # None when the driver cannot tell cheaply
    warnings: list[str] = field(default_factory=list)


@dataclass
class Batch:
    """Consecutive features, reprojected to the storage CRS.

    ``wkb[i]`` is the ISO WKB (2D) of feature i, or None when it has no
    geometry or an empty one; ``rows[i]`` its attribute values in the order of
    ``SourceInfo.fields``, as Python values of the field's type (or None).
    """

    wkb: list[bytes | None]
    rows: list[tuple[Any, ...]]
    #: Number (1-based) of the batch's first feature in the file; batches may
    #: arrive out of order when a file is read by several processes.
    first: int = 0


class Source(Protocol):
    """An opened file ready to be read once."""

    info: SourceInfo

    def batches(self, size: int = 10_000) -> Iterator[Batch]:
        """Yield the features in batches; raise ``IngestError`` on a bad record."""
        ...
