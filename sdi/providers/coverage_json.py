"""CoverageJSON of a coverage subset, written in chunks.

Turning every cell into a Python number and the whole document into one
string costs about 60 bytes of memory per cell (a 4096 x 4096 grid: over
1 GB). Here the document around the values is serialised once, and each
band's values are converted and written :data:`CHUNK_CELLS` at a time, so a
response holds the cell array (which the cell cap bounds) and one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from sdi.providers.raster import BandInfo, RasterInfo
from sdi.providers.raster_render import valid_mask

__all__ = ["CHUNK_CELLS", "MEDIA_TYPE", "coveragejson_chunks"]

MEDIA_TYPE = "application/prs.coverage+json"
#: Cells converted and written at a time (about 1 MB of JSON for floats).
CHUNK_CELLS = 65_536
#: Stands for a band's values in the document skeleton (never a real string).
_VALUES = "\x00values\x00"


def _domain(info: RasterInfo, transform: Affine, width: int, height: int) -> Any:
    axes = info.axes
    x0 = transform.c + transform.a / 2
    y0 = transform.f + transform.e / 2
    return {
        "type": "Domain",
        "domainType": "Grid",
        "axes": {
            "x": {"start": x0, "stop": x0 + transform.a * (width - 1), "num": width},
            "y": {"start": y0, "stop": y0 + transform.e * (height - 1), "num": height},
        },
        "referencing": [
            {
                # In the CRS's axis order (EPSG:2326 is N, E).
                "coordinates": ["x", "y"]
                if axes.order[0] == axes.x_label
                else ["y", "x"],
                "system": {
                    "type": "GeographicCRS" if axes.geographic else "ProjectedCRS",
                    "id": info.crs_uri,
                },
            }
        ],
    }


def _parameter(band: BandInfo) -> dict[str, Any]:
    label = band.description or band.name
    parameter: dict[str, Any] = {
        "type": "Parameter",
        "description": {"en": label},
        "observedProperty": {"label": {"en": label}},
    }
    if band.unit:
        parameter["unit"] = {"symbol": band.unit}
    return parameter


def _values(values: npt.NDArray[Any], band: BandInfo) -> Iterator[bytes]:
    """``v,v,null,...`` of one band, :data:`CHUNK_CELLS` cells at a time."""
    flat = values.ravel()
    valid = valid_mask(values[np.newaxis], [band]).ravel()
    for start in range(0, flat.size, CHUNK_CELLS):
        chunk = flat[start : start + CHUNK_CELLS]
        numbers: list[Any] = (
            chunk.astype(np.int64) if band.is_integer else chunk.astype(np.float64)
        ).tolist()
        for i in np.flatnonzero(~valid[start : start + CHUNK_CELLS]).tolist():
            numbers[i] = None
        text = json.dumps(numbers, separators=(",", ":"))[1:-1]
        yield (text if start == 0 else "," + text).encode()


def coveragejson_chunks(
    info: RasterInfo,
    data: npt.NDArray[Any],
    bands: list[BandInfo],
    transform: Affine,
) -> Iterator[bytes]:
    """The CoverageJSON of ``data`` (bands, height, width), as UTF-8 chunks.

    Nodata and NaN cells are ``null``; integer bands are written as integers.
    """
    height, width = data.shape[1:]
    document = {
        "type": "Coverage",
        "domain": _domain(info, transform, width, height),
        "parameters": {band.name: _parameter(band) for band in bands},
        "ranges": {
            band.name: {
                "type": "NdArray",
                "dataType": "integer" if band.is_integer else "float",
                "axisNames": ["y", "x"],
                "shape": [height, width],
                "values": [_VALUES],
            }
            for band in bands
        },
    }
    marker = json.dumps(_VALUES)
    pieces = json.dumps(document, ensure_ascii=False).split(marker)
    assert len(pieces) == len(bands) + 1
    yield pieces[0].encode()
    for i, band in enumerate(bands):
        yield from _values(data[i], band)
        yield pieces[i + 1].encode()
