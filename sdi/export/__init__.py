"""Reading versions back out: downloads (GeoPackage, GeoJSON), the review
summary and history, and the preview map's GeoJSON.

Like ``sdi.ingest`` and ``sdi.providers``, this package composes SQL over the
per-layer tables ``sdi_data.<slug>`` (with ``psycopg.sql`` only).
"""

from sdi.export.preview import DEFAULT_LIMIT, preview_features
from sdi.export.review import (
    layer_history,
    schema_change,
    uploaders,
    version_summary,
)
from sdi.export.write import FORMATS, ExportFormat, export_version

__all__ = [
    "DEFAULT_LIMIT",
    "FORMATS",
    "ExportFormat",
    "export_version",
    "layer_history",
    "preview_features",
    "schema_change",
    "uploaders",
    "version_summary",
]
