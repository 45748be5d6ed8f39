"""Ingestion: ogr2ogr's COPY load against sdi's versioned ingestion.

For each data set (zipped Shapefile, GeoPackage) and each repeat:

a. ``ogr2ogr -f PostgreSQL`` with ``PG_USE_COPY``, reprojecting to EPSG:4326
   (sdi's storage CRS) into a plain table with a GiST index: the baseline;
b. ``sdi.ingest.ingest_file`` of the same file as version 1 of a new layer
   (unpack, read, reproject, COPY, repair check, merge, indexes, registry);
c. ``ingest_file`` of the same file again as version 2: every feature is
   unchanged, so this measures the diff path.

A ``CHECKPOINT`` before each timed run keeps one run's dirty pages out of the
next one's time.
"""

from __future__ import annotations

import subprocess
from typing import Any

from psycopg import Connection, sql

from bench import data
from bench.context import BenchContext, PostGIS
from bench.timing import Measurement, timed
from sdi.ingest import ingest_file
from sdi.registry import LayerInput, create_agency, create_layer, get_licence

NAME = "ingest"
DESCRIPTION = (
    "ogr2ogr vs sdi ingest_file of ~300k building polygons (EPSG:2326 -> 4326): "
    "new layer, then the same file as an unchanged second version"
)
KEY_COLUMN = "BUILDINGID"


def _ogr2ogr(pg: PostGIS, ds: data.Dataset, table: str) -> None:
    source = f"/vsizip/{ds.path}" if ds.format == "shp" else str(ds.path)
    cmd = [
        "ogr2ogr", "--config", "PG_USE_COPY", "YES",
        "-f", "PostgreSQL", pg.ogr_dsn, source,
        "-nln", table, "-t_srs", "EPSG:4326",
        "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
        "-overwrite",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed: {done.stderr.strip()}")


def _checkpoint(conn: Connection[Any]) -> None:
    conn.execute("CHECKPOINT")


def _size_mb(conn: Connection[Any], schema: str, table: str) -> float:
    qualified = sql.Identifier(schema, table).as_string(conn)
    row = conn.execute(
        "SELECT pg_total_relation_size(to_regclass(%s))", (qualified,)
    ).fetchone()
    return round(int(row[0] or 0) / 1024**2, 1) if row else 0.0


def _count(conn: Connection[Any], schema: str, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _drop_layer(conn: Connection[Any], slug: str) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM sdi.layers WHERE slug = %s", (slug,))
        conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("sdi_data", slug))
        )


def run(ctx: BenchContext) -> list[Measurement]:
    """Time a, b and c above for every data set; returns the measurements."""
    opts = ctx.options
    console = ctx.console
    datasets = data.buildings(
        opts.data_dir, opts.scale, opts.formats,
        regenerate=opts.regenerate, console=console,
    )  # fmt: skip
    results: list[Measurement] = []
    with ctx.postgis() as pg, pg.connect() as conn:
        settings = pg.settings()
        agency = create_agency(conn, "bench", "Benchmark", actor="bench")
        licence = get_licence(conn, "cc-by-4.0")
        for ds in datasets:
            common: dict[str, Any] = {
                "suite": NAME, "dataset": ds.label, "features": ds.features,
            }  # fmt: skip
            ogr = Measurement(case="ogr2ogr", label="ogr2ogr (COPY)", **common)
            new = Measurement(
                case="sdi-new", label="sdi ingest: new layer", baseline="ogr2ogr",
                **common,
            )  # fmt: skip
            again = Measurement(
                case="sdi-v2", label="sdi ingest: version 2 (unchanged)",
                baseline="ogr2ogr", **common,
            )  # fmt: skip
            ogr.extra["file_mb"] = round(ds.bytes / 1024**2, 1)
            table = f"ogr_{ds.format}"
            for r in range(1, opts.repeat + 1):
                where = f"{ds.name}, run {r}/{opts.repeat}"
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table))
                )
                _checkpoint(conn)
                with console.status(f"ogr2ogr {where}"):
                    seconds, _ = timed(_ogr2ogr, pg, ds, table)
                ogr.runs.append(seconds)
                console.log(f"ogr2ogr {where}: {seconds:.2f} s")

                slug = f"bench_{ds.format}_{r}"
                create_layer(
                    conn, agency,
                    LayerInput(slug=slug, title_en=f"Benchmark {ds.name}",
                               licence_id=licence.id, key_column=KEY_COLUMN),
                    actor="bench",
                )  # fmt: skip
                for measurement, expect in ((new, "added"), (again, "unchanged")):
                    _checkpoint(conn)
                    with console.status(f"{measurement.label} {where}"):
                        seconds, version = timed(
                            ingest_file, conn, settings, ds.path, layer=slug,
                            actor="bench",
                        )  # fmt: skip
                    if version.diff.get(expect) != ds.features:
                        raise RuntimeError(
                            f"{measurement.label}: expected {ds.features} {expect}, "
                            f"got {version.diff}"
                        )
                    measurement.runs.append(seconds)
                    measurement.extra["diff"] = version.diff
                    measurement.extra["report"] = version.report
                    console.log(f"{measurement.label} {where}: {seconds:.2f} s")
                ogr.extra["table_mb"] = _size_mb(conn, "public", table)
                ogr.extra["rows"] = _count(conn, "public", table)
                new.extra["table_mb"] = _size_mb(conn, "sdi_data", slug)
                new.extra["rows"] = _count(conn, "sdi_data", slug)
                if r < opts.repeat:
                    _drop_layer(conn, slug)
            results += [ogr, new, again]
    return results
