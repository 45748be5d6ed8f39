"""Load a file as a new version of a layer, in one transaction.

COPY the reader's batches into a temporary staging table, repair geometries
in PostGIS, then merge into ``sdi_data.<slug>``: rows of features that changed
or vanished are closed at this version, new and changed features get new rows,
unchanged rows are left alone. Any failure rolls everything back, so the
published version keeps serving and nothing half-written remains.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection, sql

from sdi.errors import IngestError, SdiError, TooLargeError
from sdi.ingest.limits import database_limit_error
from sdi.ingest.messages import hide_paths
from sdi.ingest.read import open_source
from sdi.ingest.source import Field, Source
from sdi.ingest.table import (
    create_indexes,
    create_layer_table,
    existing_columns,
    reconcile_columns,
    table_id,
)
from sdi.registry import audit, get_layer, insert_version, latest_version_number
from sdi.registry.models import Layer, Version
from sdi.settings import Settings

__all__ = ["ingest_file"]

LOGGER = logging.getLogger(__name__)

#: Called as ``progress(done, total)``; total is None when the reader cannot tell.
Progress = Callable[[int, int | None], None]

_COPY_TYPES = {
    "text": "text",
    "bigint": "int8",
    "double precision": "float8",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "time": "time",
}
# Polygons repaired by ST_MakeValid may gain lines or points; keep the family.
_FAMILY_DIM = {"POINT": 1, "LINESTRING": 2, "POLYGON": 3}


@contextmanager
def _phase(timings: dict[str, float], name: str) -> Iterator[None]:
    """Time one step of a load into ``timings`` (kept in the version report)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - start, 3)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _attr(i: int) -> sql.Identifier:
    """Staging column for the i-th attribute (file names may be anything)."""
    return sql.Identifier(f"a{i}")


def _create_stage(conn: Connection[Any], fields: list[Field]) -> None:
    columns: list[sql.Composable] = [sql.SQL("_n bigint"), sql.SQL("_wkb bytea")]
    columns += [
        sql.SQL("{} {}").format(_attr(i), sql.SQL(f.pg_type))
        for i, f in enumerate(fields)
    ]
    conn.execute(
        sql.SQL("CREATE TEMP TABLE _sdi_stage ({}) ON COMMIT DROP").format(
            sql.SQL(", ").join(columns)
        )
    )


def _copy(conn: Connection[Any], source: Source, progress: Progress | None) -> int:
    """Stream every feature into the staging table; returns the count."""
    types = ["int8", "bytea"] + [_COPY_TYPES[f.pg_type] for f in source.info.fields]
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy("COPY _sdi_stage FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        for batch in source.batches():
            # Batches say where they start in the file (several processes
            # may read it); _n keeps the file's order for ids and matching.
            base = batch.first - 1 if batch.first else n
            for i, (wkb, row) in enumerate(zip(batch.wkb, batch.rows, strict=True)):
                copy.write_row((base + i + 1, wkb, *row))
            n += len(batch.rows)
            if progress is not None:
                progress(n, source.info.feature_count)
    return n


def _geometry_family(conn: Connection[Any]) -> tuple[str | None, bool]:
    """The geometry family of the staged rows and whether multi types occur."""
    rows = conn.execute(
        "SELECT DISTINCT GeometryType(ST_GeomFromWKB(_wkb)) FROM _sdi_stage "
        "WHERE _wkb IS NOT NULL"
    ).fetchall()
    types = {str(r[0]) for r in rows}
    families = {t.removeprefix("MULTI") for t in types} - {"GEOMETRYCOLLECTION"}
    if "GEOMETRYCOLLECTION" in types:
        raise IngestError(
            "The file contains geometry collections; split them into one layer per "
            "geometry type."
        )
    if len(families) > 1:
        raise IngestError(
            "The file mixes geometry types ("
            + ", ".join(sorted(t.title() for t in types))
            + "); a layer holds one type: split the file."
        )
    family = families.pop() if families else None
    return family, any(t.startswith("MULTI") for t in types)


def _geometry_sql(srid: int, family: str | None, multi: bool) -> sql.Composable:
    """Expression turning staged WKB ``_wkb`` into the stored geometry.

    Empty geometries become NULL; invalid ones are repaired with ST_MakeValid,
    keeping only the parts of the layer's family (a repaired polygon can shed
    lines); ``multi`` stores every geometry as its multi type.
    """
    dim = _FAMILY_DIM.get(family or "", 0)
    repaired = (
        sql.SQL("ST_CollectionExtract(ST_MakeValid(g), {})").format(sql.Literal(dim))
        if dim
        else sql.SQL("ST_MakeValid(g)")
    )
    fixed = sql.SQL(
        "CASE WHEN g IS NULL OR ST_IsEmpty(g) THEN NULL "
        "WHEN ST_IsValid(g) THEN g ELSE {} END"
    ).format(repaired)
    return sql.SQL("ST_Multi({})").format(fixed) if multi else fixed


def _merge(
    conn: Connection[Any],
    slug: str,
    fields: list[Field],
    stored: list[Field],
    number: int,
    *,
    srid: int,
    family: str | None,
    multi: bool,
    key_column: str | None,
    first: bool = False,
) -> dict[str, int]:
    """Close changed/vanished rows and insert new/changed ones in one statement.

    A feature's identity is its key (the key column, or its content hash with
    an occurrence number) and its state is the hash of the source's own bytes
    (WKB and attribute text), so unchanged features are recognised without
    parsing their geometry; only inserted rows are parsed and repaired.
    ``first``: the table is new, so every feature is simply inserted.
    Returns the diff counts.
    """
    table = table_id(slug)
    n = sql.Literal(number)
    refs = [_attr(i) for i in range(len(fields))]
    row_text = (
        sql.SQL("ROW({})::text").format(sql.SQL(", ").join(refs))
        if fields
        else sql.SQL("''")
    )
    if key_column is not None:
        key_expr: sql.Composable = sql.SQL("{}::text").format(
            _attr([f.name for f in fields].index(key_column))
        )
    else:
        key_expr = sql.SQL(
            "_hash::text || '#' || row_number() OVER (PARTITION BY _hash ORDER BY _n)"
        )
    columns = sql.SQL("").join(sql.SQL(", ") + sql.Identifier(f.name) for f in fields)
    values = sql.SQL("").join(
        sql.SQL(", {}::{}").format(_attr(i), sql.SQL(f.pg_type))
        for i, f in enumerate(stored)
    )
    hashed = sql.SQL(
        """
        WITH hashed AS (
            SELECT *, md5(coalesce(_wkb, ''::bytea)
                          || convert_to({row_text}, 'UTF8'))::uuid AS _hash
            FROM _sdi_stage
        ), f AS MATERIALIZED (
            SELECT *, {key_expr} AS _key FROM hashed
        )
        """
    ).format(row_text=row_text, key_expr=key_expr)
    insert = sql.SQL(
        """
        INSERT INTO {table}
            (_sdi_key, _sdi_hash, _sdi_from, _sdi_geom, _sdi_repaired{columns})
        SELECT f._key, f._hash, {n}, {geom},
               g IS NOT NULL AND NOT ST_IsEmpty(g) AND NOT ST_IsValid(g)
               {values}
        FROM f CROSS JOIN LATERAL (SELECT ST_GeomFromWKB(f._wkb, {srid}) AS g) p
        """
    ).format(
        table=table,
        n=n,
        columns=columns,
        geom=_geometry_sql(srid, family, multi),
        values=values,
        srid=sql.Literal(srid),
    )
    if first:
        with conn.cursor() as cur:
            cur.execute(hashed + insert + sql.SQL(" ORDER BY f._n"))
            closed, added, changed, total = 0, cur.rowcount, 0, cur.rowcount
    else:
        closed, added, changed, total = _merge_into(conn, table, n, hashed, insert)
    if family == "POLYGON" and not multi:
        # A repaired polygon can come back as a multipolygon: store one type.
        conn.execute(
            sql.SQL(
                "UPDATE {} SET _sdi_geom = ST_Multi(_sdi_geom) WHERE _sdi_to IS NULL"
                " AND EXISTS (SELECT 1 FROM {} WHERE _sdi_from = {} AND _sdi_to IS NULL"
                " AND GeometryType(_sdi_geom) = 'MULTIPOLYGON')"
                " AND GeometryType(_sdi_geom) = 'POLYGON'"
            ).format(table, table, n)
        )
    return {
        "added": added - changed,
        "changed": changed,
        "removed": closed - changed,
        "unchanged": total - added,
    }


def _merge_into(
    conn: Connection[Any],
    table: sql.Identifier,
    n: sql.Literal,
    hashed: sql.Composable,
    insert: sql.Composable,
) -> tuple[int, int, int, int]:
    """Merge into a table that has current rows: (closed, added, changed, total).

    Both data-modifying CTEs see the snapshot before the statement, so "a
    current row with the same key and hash" means exactly "unchanged".
    """
    row = conn.execute(
        hashed
        + sql.SQL(
            """
            , closed AS (
                UPDATE {table} t SET _sdi_to = {n}
                WHERE t._sdi_to IS NULL AND NOT EXISTS (
                    SELECT 1 FROM f WHERE f._key = t._sdi_key AND f._hash = t._sdi_hash)
                RETURNING t._sdi_key
            ), added AS (
                {insert}
                WHERE NOT EXISTS (
                    SELECT 1 FROM {table} t
                    WHERE t._sdi_to IS NULL AND t._sdi_key = f._key
                      AND t._sdi_hash = f._hash)
                ORDER BY f._n
                RETURNING _sdi_key
            )
            SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM added),
                   (SELECT count(*) FROM closed JOIN added USING (_sdi_key)),
                   (SELECT count(*) FROM f)
            """
        ).format(table=table, n=n, insert=insert)
    ).fetchone()
    assert row is not None
    closed, added, changed, total = (int(v) for v in row)
    return closed, added, changed, total


def _key_problem(conn: Connection[Any], key_column: str, index: int) -> IngestError:
    """Explain, from the staged rows, why the key column cannot identify features."""
    key = _attr(index)
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM _sdi_stage WHERE {} IS NULL").format(key)
    ).fetchone()
    if row and row[0]:
        return IngestError(
            f"Key column {key_column!r} is empty in {row[0]} feature(s); every "
            "feature needs a key to be matched across versions."
        )
    dup = conn.execute(
        sql.SQL(
            "SELECT {k}::text, count(*) FROM _sdi_stage GROUP BY {k} "
            "HAVING count(*) > 1 ORDER BY count(*) DESC, {k}::text LIMIT 3"
        ).format(k=key)
    ).fetchall()
    examples = ", ".join(f"{k!r} ({c} times)" for k, c in dup)
    return IngestError(
        f"Key column {key_column!r} is not unique: {examples}. Fix the file or "
        "choose another key column."
    )


_TYPE_NAMES = {
    "POINT": "Point",
    "MULTIPOINT": "MultiPoint",
    "LINESTRING": "LineString",
    "MULTILINESTRING": "MultiLineString",
    "POLYGON": "Polygon",
    "MULTIPOLYGON": "MultiPolygon",
}


def _summary(
    conn: Connection[Any], slug: str, number: int, srid: int
) -> dict[str, Any]:
    """Counts, WGS 84 extent and geometry type of version ``number``."""
    row = conn.execute(
        sql.SQL(
            """
            SELECT count(*), count(*) FILTER (WHERE _sdi_repaired),
                   count(*) FILTER (WHERE _sdi_geom IS NULL),
                   array_agg(DISTINCT GeometryType(_sdi_geom))
                       FILTER (WHERE _sdi_geom IS NOT NULL),
                   ST_Transform(
                       ST_SetSRID(ST_Extent(_sdi_geom)::geometry, {srid}), 4326)
            FROM {table}
            WHERE _sdi_from <= {n} AND (_sdi_to IS NULL OR _sdi_to > {n})
            """
        ).format(table=table_id(slug), n=sql.Literal(number), srid=sql.Literal(srid))
    ).fetchone()
    assert row is not None
    count, repaired, empty, types, box = row
    extent = None
    if box is not None:
        corners = conn.execute(
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
            " FROM (SELECT %s::geometry AS b) x",
            (box,),
        ).fetchone()
        extent = [float(v) for v in corners] if corners else None
    names = sorted(_TYPE_NAMES.get(t, t.title()) for t in (types or []))
    return {
        "count": int(count),
        "repaired": int(repaired),
        "empty": int(empty),
        "extent": extent,
        # After promotion a layer has one type; the multi one sorts first.
        "geometry_type": names[0] if names else "Unknown",
    }


def ingest_file(
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
    """Ingest ``path`` as the next version of ``layer`` (one transaction).

    The layer must be registered; the version is created but not published.
    Raises an ``SdiError`` subclass with a user-facing message on bad input;
    nothing is written then.
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"File not found: {path}")
    size = path.stat().st_size if path.is_file() else 0
    if size > settings.max_upload_bytes:
        raise TooLargeError(
            f"{path.name} is {size:,} bytes; the limit is "
            f"{settings.max_upload_bytes:,} (SDI_MAX_UPLOAD_BYTES)."
        )
    checksum = _sha256(path) if path.is_file() else ""
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="ingest-", dir=settings.upload_dir))
    started = time.monotonic()
    try:
        with conn.transaction():
            target = get_layer(conn, layer, for_update=True)
            with open_source(
                path,
                work_dir=work_dir,
                settings=settings,
                layer=source_layer,
                encoding=encoding,
                crs=crs,
                x_field=x_field,
                y_field=y_field,
            ) as source:
                version = _load(
                    conn,
                    settings,
                    target,
                    source,
                    progress,
                    source_filename=filename or path.name,
                    checksum=checksum,
                    user_id=user_id,
                    actor=actor,
                    note=note,
                    started=started,
                )
    except SdiError as exc:
        # Messages quote what GDAL said, which may name the work directory.
        exc.message = hide_paths(exc.message, work_dir, path.parent)
        raise
    except psycopg.errors.DataError as exc:
        LOGGER.warning("ingesting %s: %s", path.name, exc)
        raise IngestError(
            f"The database refused a value in {path.name}: "
            f"{exc.diag.message_primary or type(exc).__name__}"
        ) from exc
    except psycopg.errors.ProgramLimitExceeded as exc:
        LOGGER.warning("ingesting %s: %s", path.name, exc)
        raise database_limit_error(exc, path.name) from exc
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return version


def _load(
    conn: Connection[Any],
    settings: Settings,
    target: Layer,
    source: Source,
    progress: Progress | None,
    *,
    source_filename: str,
    checksum: str,
    user_id: int | None,
    actor: str,
    note: str,
    started: float,
) -> Version:
    info = source.info
    fields = info.fields
    names = [f.name for f in fields]
    if target.key_column is not None and target.key_column not in names:
        raise IngestError(
            f"Layer {target.slug!r} matches features by the key column "
            f"{target.key_column!r}, which this file lacks. Columns: "
            + ", ".join(names)
        )
    number = latest_version_number(conn, target.id) + 1
    timings: dict[str, float] = {}
    existing = existing_columns(conn, target.slug)
    new_table = existing is None
    if existing is None:
        create_layer_table(conn, target.slug, settings.storage_srid)
        existing = {}
    stored = reconcile_columns(conn, target.slug, fields, existing)
    _create_stage(conn, fields)
    with _phase(timings, "read_copy"):
        copied = _copy(conn, source, progress)
    if copied == 0:
        raise IngestError(f"{source_filename} holds no features.")
    with _phase(timings, "check_types"):
        family, multi = _geometry_family(conn)
    if family is None:
        raise IngestError(
            f"{source_filename} has no geometries (every feature's is empty or "
            "missing); sdi publishes spatial layers only."
        )
    key_index = names.index(target.key_column) if target.key_column else None
    try:
        # A savepoint, so that a key problem can be explained from the staged rows.
        with conn.transaction():
            with _phase(timings, "merge"):
                diff = _merge(
                    conn,
                    target.slug,
                    fields,
                    stored,
                    number,
                    srid=settings.storage_srid,
                    family=family,
                    multi=multi,
                    key_column=target.key_column,
                    first=new_table,
                )
            if new_table:
                with _phase(timings, "index"):
                    create_indexes(conn, target.slug)
    except (psycopg.errors.UniqueViolation, psycopg.errors.NotNullViolation) as exc:
        if target.key_column is None or key_index is None:
            raise
        raise _key_problem(conn, target.key_column, key_index) from exc
    except psycopg.errors.ProgramLimitExceeded as exc:
        if target.key_column is None:
            raise
        raise IngestError(
            f"Key column {target.key_column!r} has values too long to index "
            "(PostgreSQL allows about 2,700 bytes per key); choose a shorter "
            "key column."
        ) from exc
    with _phase(timings, "analyze"):
        conn.execute(sql.SQL("ANALYZE {}").format(table_id(target.slug)))
    with _phase(timings, "summary"):
        summary = _summary(conn, target.slug, number, settings.storage_srid)
    conn.execute("DROP TABLE _sdi_stage")
    elapsed = time.monotonic() - started
    report = {
        "repaired": summary["repaired"],
        "empty": summary["empty"],
        "duration_s": round(elapsed, 3),
        "features_per_s": round(summary["count"] / elapsed) if elapsed else None,
        "warnings": list(info.warnings),
        "timings": timings,
    }
    version = insert_version(
        conn,
        layer_id=target.id,
        number=number,
        created_by=user_id,
        source_filename=source_filename,
        source_sha256=checksum,
        source_format=info.format,
        source_layer=info.layer,
        source_crs=info.crs,
        source_encoding=info.encoding,
        feature_count=summary["count"],
        geometry_type=summary["geometry_type"],
        extent=summary["extent"],
        schema={
            "fields": [{"name": f.name, "type": f.pg_type} for f in stored],
            "geometry_type": summary["geometry_type"],
            "srid": settings.storage_srid,
        },
        diff=diff,
        report=report,
        note=note,
    )
    audit.record(
        conn,
        "ingest",
        "layer",
        target.slug,
        actor=actor,
        user_id=user_id,
        details={"version": number, "file": source_filename, "diff": diff},
    )
    LOGGER.info(
        "ingested %s as %s v%d: %d features in %.1fs",
        source_filename,
        target.slug,
        number,
        summary["count"],
        elapsed,
    )
    return version
