"""One entry point for an uploaded file: vector or raster, by content.

The CLI and the background worker both call :func:`ingest_upload`, so a file
takes the same path whichever way it arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg import Connection

from sdi.ingest.load import Progress, ingest_file
from sdi.ingest.raster import ingest_raster, is_raster_file
from sdi.registry import get_layer, latest_version_number
from sdi.registry.layers import set_kind
from sdi.registry.models import Version
from sdi.settings import Settings

__all__ = ["ingest_upload"]


def ingest_upload(
    conn: Connection[Any],
    settings: Settings,
    path: Path,
    *,
    layer: str,
    source_layer: str | None = None,
    encoding: str | None = None,
    crs: str | None = None,
    x_field: str | None = None,
    y_field: str | None = None,
    filename: str | None = None,
    user_id: int | None = None,
    actor: str = "cli",
    note: str = "",
    progress: Progress | None = None,
) -> Version:
    """Ingest ``path`` as the next version of ``layer`` with the right loader.

    A layer without versions takes the kind of its first upload (in the same
    transaction). Then a GeoTIFF (or a zip holding one), or any file for a
    raster layer, goes to the raster loader, which refuses what does not fit
    with its own message; anything else goes to the vector loader.
    """
    with conn.transaction():
        target = get_layer(conn, layer, for_update=True)
        raster = is_raster_file(Path(path))
        if latest_version_number(conn, target.id) == 0:
            target = set_kind(conn, target, "raster" if raster else "vector")
        if raster or target.kind == "raster":
            return ingest_raster(
                conn,
                settings,
                path,
                layer=layer,
                crs=crs,
                filename=filename,
                user_id=user_id,
                actor=actor,
                note=note,
            )
        return ingest_file(
            conn,
            settings,
            path,
            layer=layer,
            source_layer=source_layer,
            encoding=encoding,
            crs=crs,
            x_field=x_field,
            y_field=y_field,
            filename=filename,
            user_id=user_id,
            actor=actor,
            note=note,
            progress=progress,
        )
