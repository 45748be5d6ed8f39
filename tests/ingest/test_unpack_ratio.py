"""The compression-ratio limit of zips (SDI_MAX_ZIP_RATIO), from the directory alone."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from sdi.errors import IngestError, TooLargeError
from sdi.ingest.unpack import check_zip, unpack_zip
from tests.ingest import files

KIB = 1024


def zeros_zip(path: Path, members: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, size in members.items():
            zf.writestr(name, b"\x00" * size)
    return path


def test_a_small_member_is_not_judged_by_its_ratio(tmp_path: Path) -> None:
    archive = zeros_zip(tmp_path / "blank.zip", {"blank.dbf": 512 * KIB})
    written = unpack_zip(
        archive, tmp_path / "out", settings=files.reader_settings(tmp_path)
    )
    assert [p.name for p in written] == ["blank.dbf"]


def test_small_members_are_judged_together(tmp_path: Path) -> None:
    archive = zeros_zip(
        tmp_path / "many.zip", {f"part{i}.bin": 512 * KIB for i in range(8)}
    )
    with pytest.raises(TooLargeError) as caught:
        check_zip(archive, settings=files.reader_settings(tmp_path))
    assert caught.value.message.startswith(
        "many.zip was refused as a zip bomb: its contents would expand"
    )
    assert not (tmp_path / "out").exists()


def test_the_limit_is_the_setting(tmp_path: Path) -> None:
    archive = files.make_zip_bomb(tmp_path, size=4 * 1024 * KIB)
    lenient = files.reader_settings(tmp_path, max_zip_ratio=2000)
    check_zip(archive, settings=lenient)
    with pytest.raises(TooLargeError, match=r"the limit is 200 times"):
        check_zip(archive, settings=files.reader_settings(tmp_path))


def test_compressed_sizes_beyond_the_file_are_a_lie(tmp_path: Path) -> None:
    archive = zeros_zip(tmp_path / "liar.zip", {"a.bin": 100})
    raw = bytearray(archive.read_bytes())
    central = raw.find(b"PK\x01\x02")
    raw[central + 20 : central + 24] = struct.pack("<I", 10**9)  # compressed size
    archive.write_bytes(bytes(raw))
    with pytest.raises(IngestError, match=r"^liar\.zip is damaged: its directory"):
        check_zip(archive, settings=files.reader_settings(tmp_path))
