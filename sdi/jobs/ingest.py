"""Ingestion as a job: spool the upload, queue it, and (in the worker) load it.

An upload is written to ``<upload_dir>/spool/<token>/<its name>`` by whoever
receives it (the admin app streams it there), queued with
:func:`enqueue_ingest`, and loaded by a worker through
:func:`sdi.ingest.dispatch.ingest_upload`, the same function ``sdi ingest``
calls. The spool directory is removed once the job has succeeded or failed.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from psycopg import Connection

from sdi.errors import IngestError, TooLargeError
from sdi.ingest.crs import parse_crs
from sdi.ingest.dispatch import ingest_upload
from sdi.ingest.unpack import check_zip, is_zip
from sdi.jobs.queue import Job, enqueue
from sdi.registry import audit
from sdi.registry.models import Layer
from sdi.settings import Settings

__all__ = [
    "INGEST",
    "OPTIONS",
    "discard_upload",
    "enqueue_ingest",
    "precheck",
    "run_ingest",
    "spool_dir",
    "spool_path",
    "sweep_spool",
]

LOGGER = logging.getLogger(__name__)

#: The job kind.
INGEST = "ingest"
#: Options of :func:`sdi.ingest.ingest_file` a job may carry.
OPTIONS = ("source_layer", "encoding", "crs", "x_field", "y_field", "note")

_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_WAITING_PATHS = (
    "SELECT payload->>'path' FROM sdi.jobs"
    " WHERE kind = 'ingest' AND status IN ('queued', 'running')"
)
_MAX_NAME = 120


def spool_dir(settings: Settings) -> Path:
    """Where uploads wait for their job."""
    return settings.upload_dir / "spool"


def _safe_name(filename: str) -> str:
    """The last component of an uploaded file's name, without anything risky.

    Chinese and other letters stay (they appear in messages to the user);
    separators, control characters and leading dots go.
    """
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(
        c for c in name if unicodedata.category(c)[0] != "C" and c not in "/:"
    )
    name = name.strip().lstrip(".")
    if len(name) > _MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 10 else ""
        name = stem[: _MAX_NAME - len(keep) - 1] + ("." + keep if keep else "")
    return name or "upload"


def spool_path(settings: Settings, filename: str) -> Path:
    """A fresh path for an upload called ``filename`` (its directory is created)."""
    directory = spool_dir(settings) / secrets.token_hex(16)
    directory.mkdir(parents=True, mode=0o700)
    return directory / _safe_name(filename)


def _spool_entry(settings: Settings, path: Path) -> Path | None:
    """The per-upload directory holding ``path``, if it is one of ours."""
    root = spool_dir(settings).resolve()
    try:
        parent = path.resolve().parent
    except OSError:
        return None
    if parent.parent == root and _TOKEN.match(parent.name):
        return parent
    return None


def discard_upload(settings: Settings, path: Path | str) -> None:
    """Remove a spooled upload and its directory (anything else is left alone)."""
    entry = _spool_entry(settings, Path(path))
    if entry is None:
        LOGGER.warning("not removing %s: not a spooled upload", path)
        return
    shutil.rmtree(entry, ignore_errors=True)


def precheck(settings: Settings, path: Path, filename: str) -> None:
    """Refuse at once what ingestion would refuse without reading features.

    Empty files, files over the upload limit, and zips that are broken or
    hostile (``..`` or absolute members, symlinks, too many members, too big
    unpacked, a compression ratio over ``SDI_MAX_ZIP_RATIO``; only the zip's
    directory is read, nothing is unpacked). A file is taken for a zip by its
    first bytes, or by its name when nothing else reads it: the same rule the
    loader uses to decide what to unpack. Raises ``IngestError``.
    """
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{filename} is empty (0 bytes).")
    if size > settings.max_upload_bytes:
        raise TooLargeError(
            f"{filename} is {size:,} bytes; the limit is "
            f"{settings.max_upload_bytes:,} (SDI_MAX_UPLOAD_BYTES)."
        )
    if is_zip(path) or path.suffix.lower() == ".zip":
        check_zip(path, settings=settings)


def sweep_spool(
    conn: Connection[Any], settings: Settings, *, older_than: float = 86_400
) -> list[Path]:
    """Remove spooled uploads that no waiting job needs, older than ``older_than`` s.

    What a crash can leave: a half-received upload, or one whose request
    died before its job was queued. Returns the directories removed.
    """
    root = spool_dir(settings)
    if not root.is_dir():
        return []
    waiting = {
        entry
        for (path,) in conn.execute(_WAITING_PATHS)
        if path and (entry := _spool_entry(settings, Path(path))) is not None
    }
    cutoff = time.time() - older_than
    removed = []
    for entry in root.iterdir():
        try:
            stale = entry.stat().st_mtime < cutoff
        except OSError:
            continue
        if stale and _TOKEN.match(entry.name) and entry.resolve() not in waiting:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    for entry in removed:
        LOGGER.warning("removed abandoned upload %s", entry)
    return removed


def enqueue_ingest(
    conn: Connection[Any],
    settings: Settings,
    layer: Layer,
    path: Path,
    *,
    filename: str,
    user_id: int | None,
    actor: str,
    options: dict[str, str | None] | None = None,
) -> Job:
    """Queue the spooled upload ``path`` as the next version of ``layer``.

    The caller has checked the user's permission. The file and the ``crs``
    option are checked first (:func:`precheck`, IngestError); the upload is
    recorded in the audit log in the same transaction as the job.
    """
    if _spool_entry(settings, path) is None:
        raise ValueError(f"{path} is not a spooled upload (see spool_path)")
    precheck(settings, path, filename)
    extra = {k: v for k, v in (options or {}).items() if v}
    unknown = set(extra) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown ingest options: {sorted(unknown)}")
    if extra.get("crs"):
        parse_crs(extra["crs"])  # an unknown CRS is refused now, not in the worker
    size = path.stat().st_size
    payload: dict[str, Any] = {
        "path": str(path),
        "filename": filename,
        "layer": layer.slug,
        "bytes": size,
        "actor": actor,
        **extra,
    }
    with conn.transaction():
        job = enqueue(
            conn,
            INGEST,
            payload,
            layer_id=layer.id,
            created_by=user_id,
            message="Waiting for a worker",
        )
        audit.record(
            conn,
            "upload",
            "layer",
            layer.slug,
            actor=actor,
            user_id=user_id,
            details={"job": job.id, "file": filename, "bytes": size},
        )
    return job


def run_ingest(
    conn: Connection[Any],
    settings: Settings,
    job: Job,
    progress: Callable[[int, int | None], None],
) -> tuple[dict[str, Any], str]:
    """Load a job's upload (in the caller's transaction): ``(result, message)``."""
    payload = job.payload
    version = ingest_upload(
        conn,
        settings,
        Path(payload["path"]),
        layer=payload["layer"],
        filename=payload.get("filename"),
        user_id=job.created_by,
        actor=payload.get("actor", "worker"),
        progress=progress,
        **{k: payload.get(k) for k in OPTIONS if k != "note"},
        note=payload.get("note") or "",
    )
    diff = version.diff
    result = {
        "layer": payload["layer"],
        "version": version.number,
        "feature_count": version.feature_count,
        "diff": diff,
        "repaired": version.report.get("repaired", 0),
    }
    if version.geometry_type == "Raster":
        grid = version.schema["raster"]
        message = (
            f"Version {version.number}: {grid['width']:,} x {grid['height']:,} "
            f"cells, {grid['count']} band(s)"
        )
    else:
        message = (
            f"Version {version.number}: {version.feature_count:,} features "
            f"(+{diff.get('added', 0)} ~{diff.get('changed', 0)} "
            f"-{diff.get('removed', 0)})"
        )
    return result, message
