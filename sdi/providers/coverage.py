"""A pygeoapi coverage provider over one raster version (a Cloud Optimized GeoTIFF).

Configured by ``sdi.publish`` (never by hand)::

    providers:
      - type: coverage
        name: sdi.providers.coverage.CogCoverageProvider
        data: /srv/sdi/var/rasters/landsd_dem/v3.tif
        format: {name: GTiff, mimetype: "image/tiff; application=geotiff"}
        storage_crs: http://www.opengis.net/def/crs/EPSG/0/2326
        options:
          layer: landsd_dem
          version: 3
          max_cells: 16777216      # SDI_MAX_COVERAGE_CELLS (GeoTIFF, PNG)
          max_json_cells: 1048576  # SDI_MAX_COVERAGE_JSON_CELLS
          max_upsample: 2.0        # SDI_MAX_COVERAGE_UPSAMPLE
          raster: {...}            # the version's schema.raster: grid, bands, stats

Construction reads only this definition (pygeoapi builds a provider per
request). :meth:`CogCoverageProvider.query` answers OGC API - Coverages
requests: ``bbox`` (+ ``bbox-crs``), ``subset`` on the native CRS's axes,
``properties`` (bands, by name or 1-based number), ``scale-size``,
``scale-factor`` and ``scale-axes``; as GeoTIFF, PNG or CoverageJSON. It reads
only the window asked for, at the coarsest overview that still has enough
cells when scaling down. Before reading anything it refuses (400) more than
``max_upsample`` times the source's cells per axis (up-sampling adds cells,
not information) and a response of more values (width x height x bands) than
the format's cap: ``max_cells`` for GeoTIFF and PNG, ``max_json_cells`` for
CoverageJSON, which costs several times more per value and is written in
chunks (:mod:`sdi.providers.coverage_json`).

Without scaling, the cells returned are exactly the stored cells: a window
of the grid, never resampled. Scaling resamples with nearest neighbour, so
every value returned exists in the data (or its overviews).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy.typing as npt
from affine import Affine
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderGenericError,
    ProviderInvalidQueryError,
)
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from sdi.providers.coverage_json import coveragejson_chunks
from sdi.providers.crs import CRS84, northing_first
from sdi.providers.raster import (
    GDAL_ERRORS,
    BandInfo,
    RasterInfo,
    cell_window,
    open_dataset,
)
from sdi.providers.raster_render import default_style, render_png, valid_mask

__all__ = [
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_JSON_CELLS",
    "DEFAULT_MAX_UPSAMPLE",
    "GEOTIFF_MEDIA_TYPE",
    "CogCoverageProvider",
    "coverage_format",
]

LOGGER = logging.getLogger(__name__)

GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
#: Defaults of the caps when the provider definition carries none (the
#: settings' defaults: SDI_MAX_COVERAGE_CELLS, SDI_MAX_COVERAGE_JSON_CELLS and
#: SDI_MAX_COVERAGE_UPSAMPLE).
DEFAULT_MAX_CELLS = 4096 * 4096
DEFAULT_MAX_JSON_CELLS = 1024 * 1024
DEFAULT_MAX_UPSAMPLE = 2.0
#: ``f`` values (lower case) and the format each names.
_FORMATS = {
    "gtiff": "GTiff",
    "geotiff": "GTiff",
    "tif": "GTiff",
    "tiff": "GTiff",
    "png": "png",
    "json": "json",
    "covjson": "json",
    "coveragejson": "json",
}
_AXIS_SPEC = re.compile(r"^\s*([^()\s]+)\s*\(\s*([^()]*?)\s*\)\s*$")
_NIL_MISSING = "http://www.opengis.net/def/nil/OGC/0/missing"


def coverage_format(value: str | None) -> str | None:
    """``"GTiff"``, ``"png"`` or ``"json"`` for an ``f`` value; None if unknown."""
    if value is None:
        return "json"
    return _FORMATS.get(value.strip().lower())


def _invalid(message: str) -> ProviderInvalidQueryError:
    return ProviderInvalidQueryError(user_msg=message)


def _axis_values(text: str, parameter: str) -> dict[str, float]:
    """``x(2),y(3)`` as ``{"x": 2.0, "y": 3.0}``."""
    values: dict[str, float] = {}
    for part in _split_axes(text):
        match = _AXIS_SPEC.match(part)
        if match is None:
            raise _invalid(f"{parameter} takes axis(number) pairs, e.g. E(512),N(512).")
        try:
            values[match.group(1)] = float(match.group(2))
        except ValueError:
            raise _invalid(
                f"{parameter}: {match.group(2)!r} is not a number."
            ) from None
    return values


def _split_axes(text: str) -> list[str]:
    # Split on the commas between axis specs, not inside parentheses.
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


class CogCoverageProvider(BaseProvider):  # type: ignore[misc]
    """OGC API - Coverages over one published raster version."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        """Read the provider definition (cheap: pygeoapi does this per request)."""
        super().__init__(provider_def)
        options = self.options or {}
        self.info = RasterInfo.from_config(self.data, options.get("raster"))
        self.layer = str(options.get("layer") or "coverage")
        self.version = int(options.get("version") or 0)
        self.max_cells = int(options.get("max_cells") or DEFAULT_MAX_CELLS)
        self.max_json_cells = int(
            options.get("max_json_cells") or DEFAULT_MAX_JSON_CELLS
        )
        self.max_upsample = float(options.get("max_upsample") or DEFAULT_MAX_UPSAMPLE)
        format_def = provider_def.get("format") or {}
        self.native_format = str(format_def.get("name") or "GTiff")
        axes = self.info.axes
        self.axes = [axes.x_label, axes.y_label]
        self.crs = self.info.crs_uri
        self.num_bands = self.info.count
        self._coverage_properties = self._properties()
        self.get_fields()

    # -- metadata -----------------------------------------------------------------
    def _properties(self) -> dict[str, Any]:
        """What pygeoapi's collection description reads (grid sizes, resolution)."""
        info, axes = self.info, self.info.axes
        return {
            "bbox": list(info.bounds),
            "bbox_crs": info.crs_uri,
            "crs_type": "GeographicCRS" if axes.geographic else "ProjectedCRS",
            "bbox_units": axes.x_unit,
            "x_axis_label": axes.x_label,
            "y_axis_label": axes.y_label,
            "width": info.width,
            "height": info.height,
            "resx": info.xres,
            "resy": info.yres,
            "num_bands": info.count,
            "axes": list(self.axes),
        }

    def get_fields(self) -> dict[str, dict[str, Any]]:
        """The bands (the coverage's range type) as JSON Schema properties."""
        if not self._fields:
            for band in self.info.bands:
                spec: dict[str, Any] = {
                    "title": band.description or band.name,
                    "type": "integer" if band.is_integer else "number",
                    "x-ogc-propertySeq": band.index,
                    "x-sdi-dataType": band.dtype,
                }
                if band.unit:
                    spec["x-ogc-unit"] = band.unit
                if band.nodata is not None and not math.isnan(band.nodata):
                    spec["x-sdi-nodata"] = band.nodata
                self._fields[band.name] = spec
        return self._fields  # type: ignore[no-any-return]

    @property
    def filename(self) -> str:
        """Base name for downloads, e.g. ``landsd_dem-v3``."""
        return f"{self.layer}-v{self.version}"

    @filename.setter
    def filename(self, value: Any) -> None:
        # BaseProvider assigns None here; the name is derived instead.
        pass

    def domainset(self) -> dict[str, Any]:
        """The coverage's DomainSet (OGC CIS 1.1 JSON): its grid in the native CRS."""
        info, axes = self.info, self.info.axes
        left, bottom, right, top = info.bounds
        by_label = {
            axes.x_label: (left, right, info.xres, axes.x_unit),
            axes.y_label: (bottom, top, info.yres, axes.y_unit),
        }
        return {
            "type": "DomainSet",
            "generalGrid": {
                "type": "GeneralGridCoverage",
                "srsName": info.crs_uri,
                "axisLabels": list(axes.order),
                "axis": [
                    {
                        "type": "RegularAxis",
                        "axisLabel": label,
                        "lowerBound": by_label[label][0],
                        "upperBound": by_label[label][1],
                        "uomLabel": by_label[label][3],
                        "resolution": by_label[label][2]
                        if label == axes.x_label
                        else -by_label[label][2],
                    }
                    for label in axes.order
                ],
                "gridLimits": {
                    "type": "GridLimits",
                    "srsName": "http://www.opengis.net/def/crs/OGC/0/Index2D",
                    "axisLabels": ["i", "j"],
                    "axis": [
                        {
                            "type": "IndexAxis",
                            "axisLabel": "i",
                            "lowerBound": 0,
                            "upperBound": info.width - 1,
                        },
                        {
                            "type": "IndexAxis",
                            "axisLabel": "j",
                            "lowerBound": 0,
                            "upperBound": info.height - 1,
                        },
                    ],
                },
            },
        }

    def rangetype(self) -> dict[str, Any]:
        """The coverage's RangeType (OGC CIS 1.1 JSON): one field per band."""
        fields = []
        for band in self.info.bands:
            field: dict[str, Any] = {
                "type": "Count" if band.is_integer else "Quantity",
                "id": band.name,
                "name": band.name,
                "definition": f"ogc:def:dataType:OGC:1.1:{band.dtype}",
                "description": band.description,
                "uom": {"type": "UnitReference", "code": band.unit or "1"},
            }
            if band.nodata is not None:
                nil = "NaN" if math.isnan(band.nodata) else band.nodata
                field["nilValues"] = [{"value": nil, "reason": _NIL_MISSING}]
            fields.append(field)
        return {"type": "DataRecord", "field": fields}

    # -- queries ----------------------------------------------------------------
    def query(
        self,
        properties: Sequence[str] | None = None,
        subsets: Mapping[str, Sequence[Any]] | None = None,
        bbox: Sequence[float] | None = None,
        bbox_crs: str | None = None,
        datetime_: str | None = None,
        format_: str = "json",
        scale_size: str | None = None,
        scale_factor: str | None = None,
        scale_axes: str | None = None,
        before_read: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> bytes | Iterator[bytes]:
        """A coverage subset: GeoTIFF or PNG bytes, or CoverageJSON in chunks.

        The caps are checked before anything is read: at most ``max_upsample``
        times the source's cells per axis, at most ``max_cells`` values
        (GeoTIFF, PNG) or ``max_json_cells`` (CoverageJSON). ``before_read``
        is called once they pass, just before reading (the API takes a render
        slot there).
        """
        fmt = coverage_format(format_)
        if fmt is None:
            raise _invalid(
                f"Unknown coverage format {format_!r}; use f=GTiff, f=png or f=json."
            )
        if datetime_:
            raise _invalid("This coverage has no time axis; drop datetime.")
        bands = self._bands(properties or [])
        region = self._region(bbox or [], bbox_crs, subsets or {})
        window = cell_window(self.info, region)
        if window is None:
            left, bottom, right, top = self.info.bounds
            raise _invalid(
                "The requested area does not overlap the coverage, which spans "
                f"{self.axes[0]} {left:g} to {right:g} and {self.axes[1]} "
                f"{bottom:g} to {top:g} ({self.info.crs_uri})."
            )
        width, height = self._output_size(window, scale_size, scale_factor, scale_axes)
        self._check_upsampling(window, width, height)
        self._check_cells(fmt, width, height, len(bands))
        if before_read is not None:
            before_read()
        data = self._read(window, bands, width, height)
        transform = self._window_transform(window, width, height)
        selected = [self.info.band(i) for i in bands]
        if fmt == "GTiff":
            return self._geotiff(data, selected, transform)
        if fmt == "png":
            style = default_style(selected)
            if style.mode == "ramp":
                data, selected = data[:1], selected[:1]
            return render_png(data, valid_mask(data, selected), style)
        return coveragejson_chunks(self.info, data, selected, transform)

    def _check_upsampling(self, window: Window, width: int, height: int) -> None:
        """Refuse more cells per axis than ``max_upsample`` times the source's.

        Up-sampling adds no information, only cells to compute and send.
        """
        for label, size, source in (
            (self.axes[0], width, int(window.width)),
            (self.axes[1], height, int(window.height)),
        ):
            most = max(1, math.floor(source * self.max_upsample))
            if size > most:
                raise _invalid(
                    f"The request asks for {size:,} cells along {label}, where the "
                    f"requested area holds {source:,} source cells; this server "
                    f"up-samples at most {self.max_upsample:g}x per axis "
                    f"(SDI_MAX_COVERAGE_UPSAMPLE), i.e. {most:,} cells. Ask for "
                    "fewer cells with scale-size, or a scale-factor of at least "
                    f"{1 / self.max_upsample:g}."
                )

    def _check_cells(self, fmt: str, width: int, height: int, bands: int) -> None:
        """Refuse a response of more values than ``fmt``'s cap, before reading."""
        cells = width * height * bands
        if fmt == "json":
            limit, setting, name = (
                self.max_json_cells,
                "SDI_MAX_COVERAGE_JSON_CELLS",
                "CoverageJSON",
            )
        else:
            limit, setting = self.max_cells, "SDI_MAX_COVERAGE_CELLS"
            name = "GeoTIFF" if fmt == "GTiff" else "PNG"
        if cells > limit:
            raise _invalid(
                f"The response would hold {width} x {height} cells x {bands} "
                f"band(s) = {cells:,} values, more than this server's limit of "
                f"{limit:,} for {name} ({setting}). Ask for a smaller bbox or "
                "subset, fewer properties, or scale it down with scale-size or "
                "scale-factor"
                + (", or ask for f=GTiff, which allows more." if fmt == "json" else ".")
            )

    def _bands(self, properties: Sequence[str]) -> list[int]:
        if not properties:
            return [b.index for b in self.info.bands]
        by_name = {b.name: b.index for b in self.info.bands}
        chosen: list[int] = []
        for prop in properties:
            name = str(prop).strip()
            index = by_name.get(name)
            if index is None and name.isdigit() and 1 <= int(name) <= self.info.count:
                index = int(name)
            if index is None:
                raise _invalid(
                    f"Unknown property {name!r}; this coverage has "
                    + ", ".join(by_name)
                    + " (or their numbers, from 1)."
                )
            chosen.append(index)
        return chosen

    def _axis_key(self, name: str) -> str | None:
        """``"x"`` or ``"y"`` for an axis name (the CRS's label or x / y)."""
        axes = self.info.axes
        lowered = name.strip().lower()
        x_names = {axes.x_label.lower(), "x", "e", "lon", "long", "longitude"}
        y_names = {axes.y_label.lower(), "y", "n", "lat", "latitude"}
        if lowered in x_names:
            return "x"
        if lowered in y_names:
            return "y"
        return None

    def _region(
        self,
        bbox: Sequence[float],
        bbox_crs: str | None,
        subsets: Mapping[str, Sequence[Any]],
    ) -> tuple[float, float, float, float]:
        """The requested area in native x/y coordinates (the whole grid if none)."""
        minx, miny, maxx, maxy = self.info.bounds
        if bbox:
            bx0, by0, bx1, by1 = self._native_bbox(bbox, bbox_crs)
            minx, miny = max(minx, bx0), max(miny, by0)
            maxx, maxy = min(maxx, bx1), min(maxy, by1)
        for axis, values in subsets.items():
            key = self._axis_key(axis)
            if key is None:
                raise _invalid(
                    f"Unknown axis {axis!r} in subset; this coverage's axes are "
                    f"{self.axes[0]} and {self.axes[1]}."
                )
            low, high = self._interval(axis, values)
            if key == "x":
                minx, maxx = max(minx, low), min(maxx, high)
            else:
                miny, maxy = max(miny, low), min(maxy, high)
        return minx, miny, maxx, maxy  # min > max: no overlap (cell_window: None)

    @staticmethod
    def _interval(axis: str, values: Sequence[Any]) -> tuple[float, float]:
        if not values or len(values) > 2:
            raise _invalid(f"subset {axis} takes one value or low:high.")
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise _invalid(f"subset {axis} takes numbers.") from None
        if not all(math.isfinite(v) for v in numbers):
            raise _invalid(f"subset {axis} takes finite numbers.")
        low, high = numbers[0], numbers[-1]
        if low > high:
            raise _invalid(f"subset {axis}: {low:g} is above {high:g}.")
        return low, high

    def _native_bbox(
        self, bbox: Sequence[float], bbox_crs: str | None
    ) -> tuple[float, float, float, float]:
        if len(bbox) not in (4, 6):
            raise _invalid("bbox takes 4 numbers (minx,miny,maxx,maxy) or 6.")
        values = [float(v) for v in bbox]
        x0, y0, x1, y1 = values if len(values) == 4 else values[:2] + values[3:5]
        crs_uri = bbox_crs or CRS84
        try:
            if northing_first(crs_uri):  # EPSG:4326 bbox is lat,lon,lat,lon
                x0, y0, x1, y1 = y0, x0, y1, x1
        except ValueError as exc:
            raise _invalid(f"Unknown bbox-crs {crs_uri!r}.") from exc
        if x0 > x1 or y0 > y1:
            raise _invalid("bbox minimum above maximum.")
        if crs_uri == self.info.crs_uri:
            return x0, y0, x1, y1
        try:
            # GDAL/PROJ, in x/y (longitude first) order; densified edges.
            left, bottom, right, top = transform_bounds(
                crs_uri, self.info.crs_wkt, x0, y0, x1, y1, densify_pts=21
            )
        except (*GDAL_ERRORS, CRSError, ValueError) as exc:
            raise _invalid(f"Cannot transform the bbox from {crs_uri}: {exc}") from exc
        if not all(math.isfinite(v) for v in (left, bottom, right, top)):
            raise _invalid(f"The bbox cannot be expressed in {self.info.crs_uri}.")
        return left, bottom, right, top

    def _output_size(
        self,
        window: Window,
        scale_size: str | None,
        scale_factor: str | None,
        scale_axes: str | None,
    ) -> tuple[int, int]:
        width, height = int(window.width), int(window.height)
        given = [p for p in (scale_size, scale_factor, scale_axes) if p]
        if len(given) > 1:
            raise _invalid("Use one of scale-size, scale-factor and scale-axes.")
        if scale_factor:
            try:
                factor = float(scale_factor)
            except ValueError:
                raise _invalid("scale-factor takes a number.") from None
            return self._scaled(width, factor), self._scaled(height, factor)
        if scale_axes:
            for axis, factor in _axis_values(scale_axes, "scale-axes").items():
                key = self._require_axis(axis, "scale-axes")
                if key == "x":
                    width = self._scaled(width, factor)
                else:
                    height = self._scaled(height, factor)
        if scale_size:
            for axis, size in _axis_values(scale_size, "scale-size").items():
                key = self._require_axis(axis, "scale-size")
                if size < 1 or size != int(size):
                    raise _invalid("scale-size takes whole numbers of cells, >= 1.")
                if key == "x":
                    width = int(size)
                else:
                    height = int(size)
        return width, height

    def _require_axis(self, axis: str, parameter: str) -> str:
        key = self._axis_key(axis)
        if key is None:
            raise _invalid(
                f"Unknown axis {axis!r} in {parameter}; this coverage's axes are "
                f"{self.axes[0]} and {self.axes[1]}."
            )
        return key

    @staticmethod
    def _scaled(cells: int, factor: float) -> int:
        # A factor above 1 scales down: scale-factor=2 halves each axis.
        if not math.isfinite(factor) or factor <= 0:
            raise _invalid("A scale factor must be a positive number.")
        return max(1, round(cells / factor))

    def _read(
        self, window: Window, bands: list[int], width: int, height: int
    ) -> npt.NDArray[Any]:
        dataset = open_dataset(self.info.path)
        try:
            # With out_shape smaller than the window GDAL reads the best overview.
            data: npt.NDArray[Any] = dataset.read(
                indexes=bands,
                window=window,
                out_shape=(len(bands), height, width),
                resampling=Resampling.nearest,
            )
        except GDAL_ERRORS as exc:
            LOGGER.error("reading %s failed: %s", self.info.path, exc)
            raise ProviderGenericError(
                user_msg="The raster could not be read; the error has been logged."
            ) from exc
        return data

    def _window_transform(self, window: Window, width: int, height: int) -> Affine:
        base: Affine = window_transform(window, self.info.transform)
        scaled: Affine = base @ Affine.scale(
            window.width / width, window.height / height
        )
        return scaled

    def _geotiff(
        self, data: npt.NDArray[Any], bands: list[BandInfo], transform: Affine
    ) -> bytes:
        count, height, width = data.shape
        nodata = bands[0].nodata
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": count,
            "dtype": data.dtype.name,
            "crs": open_dataset(self.info.path).crs,
            "transform": transform,
            "nodata": nodata,
        }
        if [b.colorinterp for b in bands] == ["red", "green", "blue"]:
            profile["photometric"] = "RGB"
        if width >= 512 and height >= 512:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        with MemoryFile() as memfile:
            with memfile.open(**profile) as out:
                out.write(data)
                for i, band in enumerate(bands, start=1):
                    if band.description:
                        out.set_band_description(i, band.description)
                    if band.unit:
                        out.set_band_unit(i, band.unit)
            return bytes(memfile.read())
