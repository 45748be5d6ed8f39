"""Safe unpacking of uploaded zips: real archives, hostile ones included."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from sdi.errors import IngestError, TooLargeError
from sdi.ingest.unpack import _extract, is_zip, unpack_zip
from tests.ingest import files


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "out"


def _tree(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    )


def test_unpacks_a_shapefile_in_a_nested_folder(tmp_path: Path, dest: Path) -> None:
    archive = files.make_shapefile_zip(tmp_path, folder="data/2024/")
    written = unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert _tree(dest) == [
        "data/2024/places.cpg",
        "data/2024/places.dbf",
        "data/2024/places.prj",
        "data/2024/places.shp",
        "data/2024/places.shx",
    ]
    assert sorted(written) == sorted(p for p in dest.rglob("*") if p.is_file())
    original = zipfile.ZipFile(archive).read("data/2024/places.dbf")
    assert (dest / "data/2024/places.dbf").read_bytes() == original


def test_skips_macos_resource_forks_and_dotfiles(tmp_path: Path, dest: Path) -> None:
    archive = files.make_shapefile_zip(
        tmp_path,
        extra={
            "__MACOSX/._places.shp": b"resource fork",
            ".DS_Store": b"finder",
            "sub/.hidden": b"x",
        },
    )
    unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert _tree(dest) == [
        f"places.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx")
    ]


def test_utf8_member_names_without_the_flag_are_decoded(
    tmp_path: Path, dest: Path
) -> None:
    archive = tmp_path / "names.zip"
    info = zipfile.ZipInfo("道路.geojson")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, b"{}")
    raw = bytearray(archive.read_bytes())
    # Clear the UTF-8 flag, as many Windows zip tools write it.
    for sig, offset in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
        pos = raw.find(sig)
        raw[pos + offset] &= ~0x08 & 0xFF
    archive.write_bytes(bytes(raw))
    assert not zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x800
    unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert _tree(dest) == ["道路.geojson"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (files.make_zip_slip, "'../evil.txt' points outside the archive"),
        (files.make_zip_absolute, "'/tmp/evil.txt' has an absolute path"),
        (files.make_zip_symlink, "'passwd' is a symbolic link"),
        (files.make_encrypted_zip, "'secret.geojson' is encrypted"),
    ],
)
def test_refuses_hostile_members(
    tmp_path: Path, dest: Path, make: Callable[[Path], Path], expected: str
) -> None:
    archive = make(tmp_path)
    with pytest.raises(IngestError) as caught:
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert expected in caught.value.message
    assert archive.name in caught.value.message
    assert _tree(dest) == []
    assert not (tmp_path / "evil.txt").exists()


def test_refuses_windows_style_traversal(tmp_path: Path, dest: Path) -> None:
    archive = files.make_zip_with_member(tmp_path, "data\\..\\..\\evil.txt")
    with pytest.raises(IngestError, match="points outside the archive"):
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))


def test_refuses_a_drive_letter_path(tmp_path: Path, dest: Path) -> None:
    archive = files.make_zip_with_member(tmp_path, "C:/Windows/evil.txt")
    with pytest.raises(IngestError, match="absolute path"):
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))


def test_refuses_a_bomb_by_its_declared_size(tmp_path: Path, dest: Path) -> None:
    archive = files.make_zip_bomb(tmp_path, size=20 * 1024 * 1024)
    assert archive.stat().st_size < 100_000
    settings = files.reader_settings(tmp_path, max_unpacked_bytes=1024 * 1024)
    with pytest.raises(TooLargeError) as caught:
        unpack_zip(archive, dest, settings=settings)
    assert caught.value.message == (
        "bomb.zip would unpack to 20.0 MiB, over the limit of 1.0 MiB."
    )
    assert caught.value.status == 413
    assert _tree(dest) == []


def test_counts_the_bytes_really_inflated(tmp_path: Path, dest: Path) -> None:
    # The headers claim 10 bytes for a 4 MiB member: the declared-size check
    # passes, so the bytes written must be counted (zipfile itself stops at
    # the claimed size and then reports a bad CRC).
    archive = files.make_lying_zip(tmp_path, size=4 * 1024 * 1024, claimed=10)
    settings = files.reader_settings(tmp_path, max_unpacked_bytes=1024)
    with pytest.raises(IngestError) as caught:
        unpack_zip(archive, dest, settings=settings)
    assert "'data.bin'" in caught.value.message
    written = dest / "data.bin"
    assert not written.exists() or written.stat().st_size <= 1024


def test_two_members_over_the_limit_together(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\x00" * 600 * 1024)
        zf.writestr("b.bin", b"\x00" * 600 * 1024)
    settings = files.reader_settings(tmp_path, max_unpacked_bytes=1024 * 1024)
    with pytest.raises(TooLargeError, match=r"would unpack to 1\.2 MiB"):
        unpack_zip(archive, dest, settings=settings)


def test_extraction_stops_when_the_byte_budget_is_spent(tmp_path: Path) -> None:
    # The safety net under the declared-size check: whatever the headers say,
    # extraction stops once more bytes come out than the budget allows.
    archive = files.make_zip_bomb(tmp_path, size=8 * 1024 * 1024)
    target = tmp_path / "zeros.bin"
    settings = files.reader_settings(tmp_path, max_unpacked_bytes=1024 * 1024)
    with zipfile.ZipFile(archive) as zf, pytest.raises(TooLargeError) as caught:
        _extract(zf, zf.getinfo("zeros.bin"), target, 1024 * 1024, "bomb.zip", settings)
    assert caught.value.message == (
        "bomb.zip unpacks to more than 1.0 MiB (the limit); stopped at member "
        "'zeros.bin'."
    )
    assert not target.exists()


def test_refuses_too_many_members(tmp_path: Path, dest: Path) -> None:
    archive = files.make_many_members_zip(tmp_path, 12)
    settings = files.reader_settings(tmp_path, max_zip_members=10)
    with pytest.raises(TooLargeError) as caught:
        unpack_zip(archive, dest, settings=settings)
    assert caught.value.message == (
        "many.zip holds 12 files; at most 10 are accepted in one zip."
    )


def test_refuses_a_file_that_is_not_a_zip(tmp_path: Path, dest: Path) -> None:
    archive = files.make_fake_zip(tmp_path)
    assert not is_zip(archive)
    with pytest.raises(IngestError, match=r"^notazip.zip is not a valid zip archive"):
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))


def test_refuses_an_empty_zip(tmp_path: Path, dest: Path) -> None:
    archive = files.make_empty_zip(tmp_path)
    assert is_zip(archive)
    with pytest.raises(IngestError) as caught:
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert caught.value.message == "empty.zip is empty: it holds no data files."


def test_a_zip_of_only_junk_is_empty(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("__MACOSX/._x", b"x")
        zf.writestr(".DS_Store", b"x")
        zf.writestr("folder/", b"")
    with pytest.raises(IngestError, match="holds no data files"):
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))


def test_refuses_duplicate_members(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("a.txt", b"one")
        zf.writestr("a.txt", b"two")
    with pytest.raises(IngestError, match=r"'a\.txt' appears twice"):
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))


def test_refuses_a_damaged_member(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.geojson", b'{"type": "FeatureCollection"}' * 100)
    raw = bytearray(archive.read_bytes())
    start = raw.find(b"data.geojson") + len(b"data.geojson")
    for k in range(start, start + 20):
        raw[k] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(IngestError) as caught:
        unpack_zip(archive, dest, settings=files.reader_settings(tmp_path))
    assert "'data.geojson' is damaged" in caught.value.message
