"""`sdi ingest` refuses hostile and broken files with one line, and writes nothing.

Each case was accepted, or answered with a traceback or a misleading message,
before sdi checked for it (issue 9).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from sdi import registry
from sdi.cli import cli
from tests.ingest import files

ROOT = Path(__file__).resolve().parents[2]
AUDITED = ROOT / "tests" / "ingest" / "audited_cli.py"
MIB = 1024 * 1024


@pytest.fixture
def env(db_url: str, conn: psycopg.Connection[Any], tmp_path: Path) -> dict[str, str]:
    registry.create_agency(conn, "landsd", "Lands Department")
    (tmp_path / "var").mkdir()
    return {
        "SDI_DATABASE_URL": db_url,
        "SDI_VAR_DIR": str(tmp_path / "var"),
        "SDI_COLLECTIONS_DIR": str(tmp_path / "collections"),
    }


def ingest(env: dict[str, str], path: Path, *extra: str) -> tuple[int, str]:
    """``sdi ingest PATH`` through click; (exit code, everything printed)."""
    args = ["ingest", str(path), "--layer", "landsd_x", "--agency", "landsd", *extra]
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


def audited(
    env: dict[str, str], report: Path, *args: str
) -> tuple[int, str, dict[str, Any]]:
    """Run ``sdi ARGS`` as a process; (exit code, stderr, what it wrote)."""
    proc = subprocess.run(
        [sys.executable, str(AUDITED), str(report), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    return proc.returncode, proc.stderr, json.loads(report.read_text())


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def assert_one_line(output: str) -> None:
    assert "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output


def no_layer(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT count(*) FROM sdi.layers").fetchone()
    return row is not None and row[0] == 0


# -- zip bombs -------------------------------------------------------------------


def test_a_zip_bomb_is_refused_from_its_directory_with_nothing_unpacked(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    bomb = files.make_zip_bomb(tmp_path, size=200 * MIB)
    assert bomb.stat().st_size < 400_000  # 200 MiB of zeros in ~200 KB
    started = time.monotonic()
    code, err, wrote = audited(
        env,
        tmp_path / "report.json",
        "ingest", str(bomb), "--layer", "landsd_x", "--agency", "landsd",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 1, err
    assert "bomb.zip was refused as a zip bomb" in err
    assert "the limit is 200 times (SDI_MAX_ZIP_RATIO)" in err
    assert_one_line(err)
    assert wrote["opened"] == []  # not one file opened for writing under var/
    assert wrote["write_bytes"] < MIB  # nothing unpacked anywhere
    assert files_under(Path(env["SDI_VAR_DIR"])) == []
    assert no_layer(conn)
    assert elapsed < 60  # unpacking 200 MiB is not what took the time


def test_a_zip_whose_directory_lies_is_stopped_at_the_declared_size(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # Central directory and local header both claim 1000 bytes for 64 MiB:
    # the ratio looks harmless, so the copy must stop at the claim.
    liar = files.make_lying_zip(tmp_path, size=64 * MIB, claimed=1000)
    code, err, wrote = audited(
        env,
        tmp_path / "report.json",
        "ingest", str(liar), "--layer", "landsd_x", "--agency", "landsd",
    )  # fmt: skip
    assert code == 1, err
    assert "liar.zip: member 'data.bin' is damaged" in err
    assert "does not match the size or checksum its zip directory declares" in err
    assert_one_line(err)
    assert wrote["write_bytes"] < MIB  # not the 64 MiB
    assert files_under(Path(env["SDI_VAR_DIR"])) == []
    assert no_layer(conn)


def test_the_ratio_limit_is_a_setting(env: dict[str, str], tmp_path: Path) -> None:
    bomb = files.make_zip_bomb(tmp_path, size=4 * MIB)
    code, out = ingest({**env, "SDI_MAX_ZIP_RATIO": "2000"}, bomb)
    # Let through by the ratio, the zip is then refused for what it holds.
    assert code == 1 and "not in a format sdi reads" in out, out
    code, out = ingest(env, bomb)
    assert code == 1 and "SDI_MAX_ZIP_RATIO" in out, out


def test_demo_shapefile_and_sparse_dbf_pass_the_default_ratio(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # A .dbf of wide, mostly blank text fields compresses about 90 times.
    archive = files.make_shapefile_zip(tmp_path, n=12)
    code, out = ingest(env, archive)
    assert code == 0, out


# -- wide tables -------------------------------------------------------------------


def wide_geojson(path: Path, count: int, value: Any) -> Path:
    """One point with ``count`` attributes; a ``str`` value gets a suffix each."""
    props = {
        f"a{i:04d}": f"{value}{i:04d}" if isinstance(value, str) and value else value
        for i in range(count)
    }
    point = {"type": "Point", "coordinates": [114.17, 22.3]}
    return files.write_geojson(path, [files.geojson_feature(point, props)])


def test_numbers_too_wide_for_a_row_are_refused_before_loading(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # The case: 1,500 integer attributes in 20 KB.
    path = wide_geojson(tmp_path / "wide.geojson", 1500, 7)
    assert path.stat().st_size < 30_000
    code, out = ingest(env, path)
    assert code == 1, out
    assert "wide.geojson has 1500 attributes, 1500 of them numbers" in out
    assert "PostgreSQL stores at most 8,160 bytes per row" in out
    assert_one_line(out)
    assert no_layer(conn)


def test_text_too_wide_for_a_row_is_refused_in_a_sentence(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # 500 text values of 30 bytes (too short to compress): over 8 kB a row.
    path = wide_geojson(tmp_path / "wide.geojson", 500, secrets.token_hex(13))
    code, out = ingest(env, path)
    assert code == 1, out
    assert "A feature of wide.geojson is too wide to store" in out
    assert_one_line(out)
    assert "INSERT" not in out and "COPY" not in out
    assert no_layer(conn)


def test_the_column_limit_counts_sdi_s_own_columns(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path = wide_geojson(tmp_path / "wide.geojson", 1594, "")
    code, out = ingest(env, path)
    assert code == 1, out
    assert "has 1594 attributes; a layer can hold at most 1593" in out
    assert_one_line(out)


# -- silently accepted input -------------------------------------------------------


def test_an_unknown_crs_option_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    code, out = ingest(env, files.make_geojson(tmp_path), "--crs", "EPSG::99999")
    assert code == 1, out
    assert "Unknown or unreadable CRS 'EPSG::99999'" in out
    assert_one_line(out)


@pytest.mark.parametrize(
    "name", ["urn:ogc:def:crs:EPSG::99999", "EPSG::99999", "EPSG:99999"]
)
def test_a_geojson_declaring_an_unknown_crs_is_refused(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path, name: str
) -> None:
    # GDAL falls back to WGS 84 for a crs member it cannot read.
    point = {"type": "Point", "coordinates": [114.17, 22.3]}
    path = files.write_geojson(
        tmp_path / "odd.geojson",
        [files.geojson_feature(point, {"ID": 1})],
        crs={"type": "name", "properties": {"name": name}},
    )
    code, out = ingest(env, path)
    assert code == 1, out
    assert f"odd.geojson: it declares the CRS {name!r}, which PROJ does not know" in out
    assert "--crs EPSG:2326" in out
    assert_one_line(out)
    assert no_layer(conn)


def test_a_prj_that_proj_cannot_read_is_refused_as_such(
    env: dict[str, str], tmp_path: Path
) -> None:
    archive = files.make_shapefile_zip(tmp_path, prj_text="EPSG::99999")
    code, out = ingest(env, archive)
    assert code == 1, out
    assert (
        "places.shp: its .prj file holds a coordinate reference system that PROJ "
        "does not know ('EPSG::99999')"
    ) in out
    assert_one_line(out)


def test_an_unreadable_prj_with_a_given_crs_is_a_warning(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    archive = files.make_shapefile_zip(tmp_path, prj_text="EPSG::99999")
    code, out = ingest(env, archive, "--crs", "EPSG:2326")
    assert code == 0, out
    layer = registry.get_layer(conn, "landsd_x")
    version = registry.get_version(conn, layer.id, 1)
    assert version.source_crs == "EPSG:2326"
    assert any(".prj file holds" in w for w in version.report["warnings"])


def nul_geojson(path: Path, key: str, value: str) -> Path:
    point = '{"type": "Point", "coordinates": [114.17, 22.3]}'
    path.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", '
        f'"properties": {{"ID": 1, "{key}": "{value}"}}, "geometry": {point}}}]}}'
    )
    return path


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("na\\u0000me", "v", "an attribute name"),
        ("\\u0000name", "v", "an attribute name"),
        ("name", "v\\u0000al", "a value"),
    ],
)
def test_a_nul_character_in_geojson_is_refused(
    env: dict[str, str],
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    key: str,
    value: str,
    where: str,
) -> None:
    # GDAL would cut "na\u0000me" to "na", and "\u0000name" to "".
    code, out = ingest(env, nul_geojson(tmp_path / "nul.geojson", key, value))
    assert code == 1, out
    assert f"nul.geojson holds a NUL character (\\u0000) in {where}" in out
    assert_one_line(out)
    assert no_layer(conn)


def test_an_escaped_backslash_before_u0000_is_not_a_nul(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out = ingest(env, nul_geojson(tmp_path / "ok.geojson", "name", "C:\\\\u0000"))
    assert code == 0, out


def test_a_nul_byte_deep_in_a_csv_is_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    rows = [f"{i},114.1{i % 10},22.3{i % 10},place {i}" for i in range(400)]
    rows[300] = "300,114.15,22.35,pl\x00ace"  # well past the first 4 KB
    path = tmp_path / "places.csv"
    path.write_text("ID,lon,lat,NAME\n" + "\n".join(rows) + "\n")
    assert path.read_bytes().index(b"\x00") > 4096
    code, out = ingest(env, path)
    assert code == 1, out
    assert "places.csv holds a NUL character (\\u0000) in a value" in out


def nul_csv(path: Path, header: str, row: str) -> Path:
    """A small CSV (far under 4 KB) whose header or first row holds a NUL."""
    rows = [f"{i},114.1{i},22.3{i},place {i}" for i in range(2, 9)]
    path.write_text(f"{header}\n{row}\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size < 4096
    return path


@pytest.mark.parametrize(
    ("header", "row", "where"),
    [
        ("ID,lon,lat,NAME", "1,114.15,22.35,pl\x00ace", "a value"),
        ("ID,lon,lat,NA\x00ME", "1,114.15,22.35,place", "an attribute name"),
    ],
)
def test_a_nul_byte_in_the_first_4_kb_of_a_csv_is_refused_as_a_nul(
    env: dict[str, str],
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    header: str,
    row: str,
    where: str,
) -> None:
    # The format sniffing reads 4 KB and took a NUL there for a binary file:
    # "not in a format sdi reads", unlike a NUL further on.
    code, out = ingest(env, nul_csv(tmp_path / "places.csv", header, row))
    assert code == 1, out
    assert f"places.csv holds a NUL character (\\u0000) in {where}" in out
    assert "not in a format" not in out
    assert_one_line(out)
    assert no_layer(conn)


def test_a_nul_byte_early_in_a_zipped_csv_is_refused_as_a_nul(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    csv = nul_csv(tmp_path / "places.csv", "ID,lon,lat,NAME", "1,114.1,22.3,a\x00b")
    code, out = ingest(env, files.zip_files(tmp_path / "places.zip", [csv]))
    assert code == 1, out
    assert "places.csv holds a NUL character (\\u0000) in a value" in out
    assert no_layer(conn)


@pytest.mark.parametrize(
    "data",
    [
        "ID,lon,lat\n1,114.1,22.3\n".encode("utf-16-le"),  # every other byte NUL
        bytes(range(256)) * 8,  # binary
    ],
    ids=["utf-16", "binary"],
)
def test_a_binary_file_named_csv_is_still_not_a_csv(
    env: dict[str, str], tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    code, out = ingest(env, path)
    assert code == 1, out
    assert "data.csv is not in a format sdi reads" in out


def test_a_corrupt_shp_is_refused_not_loaded_as_empty_geometries(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    shp = files.make_shapefile(tmp_path / "parts", n=40, geometry="Polygon")
    raw = bytearray(shp.read_bytes())
    raw[600:1400] = b"\xff" * 800  # records 5 to 10 overwritten
    shp.write_bytes(bytes(raw))
    archive = files.zip_files(tmp_path / "corrupt.zip", files.shapefile_parts(shp))
    code, out = ingest(env, archive)
    assert code == 1, out
    assert (
        "Feature 5 of places.shp could not be read: its geometry record is damaged"
    ) in out
    assert_one_line(out)
    assert no_layer(conn)


def test_null_shapes_are_still_accepted(
    env: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    shp = files.make_shapefile(tmp_path / "parts", n=12)
    with __import__("fiona").open(shp, "a") as dst:
        dst.write({"geometry": None, "properties": files.place_properties(12)})
    archive = files.zip_files(tmp_path / "nulls.zip", files.shapefile_parts(shp))
    code, out = ingest(env, archive)
    assert code == 0, out
    assert "13 features" in out and "1 empty" in out


# -- internals do not reach users ------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_the_traceback_needs_debug(
    env: dict[str, str], tmp_path: Path
) -> None:
    # SDI_VAR_DIR is a file: the upload work directory cannot be made. A real
    # failure no refusal foresees.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    broken = {**env, "SDI_VAR_DIR": str(blocker)}
    path = files.make_geojson(tmp_path)
    code, out = ingest(broken, path)
    assert code == 70, out
    assert "sdi stopped on an unexpected error (NotADirectoryError)" in out
    assert "sdi --debug" in out
    assert_one_line(out)
    assert str(tmp_path) not in out
    code, out = ingest({**broken, "SDI_DEBUG": "1"}, path)
    assert code == 70 and "Traceback" in out
    result = CliRunner().invoke(
        cli,
        ["--debug", "ingest", str(path), "--layer", "landsd_x", "--agency", "landsd"],
        env=broken,
    )
    assert result.exit_code == 70 and "Traceback" in result.output


def test_a_refusal_names_no_work_directory(env: dict[str, str], tmp_path: Path) -> None:
    # GDAL's own message names the file it was given: a path in the work
    # directory. The user sees the file's name only.
    path = tmp_path / "cut.zip"
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "roads.geojson").write_text('{"type": "FeatureCollection", "features": [')
    files.zip_files(path, [inner / "roads.geojson"])
    code, out = ingest(env, path)
    assert code == 1, out
    assert "roads.geojson" in out
    assert env["SDI_VAR_DIR"] not in out and "/uploads/" not in out, out
    assert_one_line(out)
