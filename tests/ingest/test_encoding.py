"""Text encoding of .dbf and CSV files, on files written in those encodings."""

from __future__ import annotations

from pathlib import Path

import fiona
import pytest

from sdi.errors import IngestError
from sdi.ingest.encoding import (
    codec_name,
    detect_dbf_encoding,
    detect_text_encoding,
)
from tests.ingest import files


def _dbf(directory: Path, **options: object) -> Path:
    shp = files.make_shapefile(directory, **options)  # type: ignore[arg-type]
    return shp.with_suffix(".dbf")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("65001", "utf-8"),
        ("\ufeffUTF-8\r\n", "utf-8"),
        ("950", "cp950"),
        ("ANSI 950", "cp950"),
        ("CP950", "cp950"),
        ("BIG5", "big5"),
        ("Big5-HKSCS", "big5hkscs"),
        ("BIG5HKSCS", "big5hkscs"),
        ("1252", "cp1252"),
        ("88591", "iso8859-1"),
        ("ISO-8859-1", "iso8859-1"),
        ("GBK", "gbk"),
        ("936", "gbk"),
        ("", None),
        ("not-an-encoding", None),
    ],
)
def test_codec_names_from_cpg_labels(label: str, codec: str | None) -> None:
    assert codec_name(label) == codec


def test_the_users_choice_comes_first(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs")  # its .cpg says BIG5HKSCS
    choice = detect_dbf_encoding(dbf, user_choice="Big5-HKSCS")
    assert (choice.encoding, choice.source, choice.warnings) == (
        "big5hkscs",
        "user",
        (),
    )


def test_a_user_choice_that_does_not_decode_is_refused(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs", with_cpg=False)
    with pytest.raises(IngestError) as caught:
        detect_dbf_encoding(dbf, user_choice="utf-8")
    assert caught.value.message.startswith("The text is not valid utf-8: ")
    assert "Choose another encoding" in caught.value.message


def test_an_unknown_user_encoding_is_refused(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path)
    with pytest.raises(IngestError, match="Unknown text encoding 'klingon'"):
        detect_dbf_encoding(dbf, user_choice="klingon")


def test_the_cpg_file_is_evidence(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="utf-8")
    assert dbf.with_suffix(".cpg").read_text() == "UTF-8"
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("utf-8", "cpg")


def test_a_cp950_cpg_with_hkscs_text_becomes_big5hkscs(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs")
    dbf.with_suffix(".cpg").write_text("950")
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "cpg")
    assert choice.warnings == (
        "places.cpg says cp950, but the text holds characters only Big5-HKSCS "
        "has; read as big5hkscs.",
    )


def test_a_wrong_cpg_falls_back_to_a_checked_guess(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs")
    dbf.with_suffix(".cpg").write_text("UTF-8")
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "guess")
    assert choice.warnings[0].startswith("places.cpg says utf-8, but b'")
    assert "guessed as big5hkscs" in choice.warnings[0]


def test_an_unknown_cpg_label_is_noted_and_skipped(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="utf-8")
    dbf.with_suffix(".cpg").write_text("MYSTERY")
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("utf-8", "guess")
    assert choice.warnings == ("places.cpg names an unknown encoding 'MYSTERY'.",)


@pytest.mark.parametrize(("ldid", "codec"), [(0x78, "cp950"), (0x4F, "cp950")])
def test_the_language_driver_byte_is_evidence(
    tmp_path: Path, ldid: int, codec: str
) -> None:
    archive_dir = tmp_path / "src"
    shp = files.make_shapefile(
        archive_dir, encoding="utf-8", with_cpg=False, ldid=ldid, n=2
    )
    dbf = shp.with_suffix(".dbf")
    # Rewrite the two sample names in cp950 so the byte tells the truth.
    raw = dbf.read_bytes()
    for _, tc, _, _ in files.PLACES[:2]:
        utf8, big5 = tc.encode("utf-8"), tc.encode("cp950")
        raw = raw.replace(utf8, big5 + b" " * (len(utf8) - len(big5)))
    dbf.write_bytes(raw)
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source, choice.warnings) == (codec, "ldid", ())


def test_ldid_cp950_with_hkscs_text_becomes_big5hkscs(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs", with_cpg=False, ldid=0x78)
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "ldid")
    assert "only Big5-HKSCS has" in choice.warnings[0]


def test_ldid_0x57_ansi_is_not_trusted(tmp_path: Path) -> None:
    # Esri's "ANSI" byte means the machine's code page: in Hong Kong, Big5.
    dbf = _dbf(tmp_path, encoding="big5hkscs", with_cpg=False, ldid=0x57)
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "guess")


def test_guess_utf8(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="utf-8", with_cpg=False)
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source, choice.warnings) == ("utf-8", "guess", ())


def test_guess_big5hkscs_for_hkscs_characters(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs", with_cpg=False)
    assert "鰂".encode("big5hkscs") in dbf.read_bytes()
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "guess")
    assert choice.warnings == (
        "the text encoding was guessed as big5hkscs; if names look wrong, upload "
        "again choosing the encoding.",
    )


def test_guess_latin1_as_the_last_resort(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="utf-8", with_cpg=False, n=1)
    raw = dbf.read_bytes().replace("中環".encode(), b"\xff\xfe\xfd\xfc\xfb\xfa")
    dbf.write_bytes(raw)
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("latin-1", "guess")
    assert "not UTF-8, Big5-HKSCS or cp950" in choice.warnings[0]


def test_a_character_cut_at_the_field_width_is_forgiven(tmp_path: Path) -> None:
    dbf = _dbf(tmp_path, encoding="big5hkscs", with_cpg=False, n=2)
    raw = bytearray(dbf.read_bytes())
    name = "中環".encode("big5hkscs")
    at = raw.find(name)
    raw[at + 2 : at + 4] = name[2:3] + b" "  # 中 plus a lone lead byte
    dbf.write_bytes(bytes(raw))
    choice = detect_dbf_encoding(dbf)
    assert (choice.encoding, choice.source) == ("big5hkscs", "guess")
    assert (
        "1 text value(s) end with a character cut in half at the field width; "
        "the partial character was dropped." in choice.warnings
    )


def test_chinese_field_names_count_as_evidence(tmp_path: Path) -> None:
    # Only a field name is non-ASCII: the guess must still see it.
    shp = tmp_path / "names.shp"
    schema = {"geometry": "Point", "properties": {"地區": "str:10"}}
    with fiona.open(
        shp, "w", driver="ESRI Shapefile", schema=schema, encoding="big5hkscs"
    ) as dst:
        dst.write(
            {
                "geometry": {"type": "Point", "coordinates": (0, 0)},
                "properties": {"地區": "abc"},
            }
        )
    shp.with_suffix(".cpg").unlink()
    choice = detect_dbf_encoding(shp.with_suffix(".dbf"))
    assert choice.encoding == "big5hkscs"


def test_a_too_short_dbf_is_an_error(tmp_path: Path) -> None:
    dbf = tmp_path / "broken.dbf"
    dbf.write_bytes(b"\x03\x00")
    with pytest.raises(IngestError, match=r"broken\.dbf is not a valid \.dbf file"):
        detect_dbf_encoding(dbf)


def test_csv_guesses(tmp_path: Path) -> None:
    utf8 = files.make_csv(tmp_path, name="u")
    big5 = files.make_csv(tmp_path, name="b", encoding="big5hkscs")
    ascii_only = tmp_path / "a.csv"
    ascii_only.write_text("name,lon,lat\nCentral,114.1,22.3\n")
    assert detect_text_encoding(utf8).encoding == "utf-8"
    assert detect_text_encoding(big5).encoding == "big5hkscs"
    assert detect_text_encoding(ascii_only).encoding == "utf-8"
    assert detect_text_encoding(big5, user_choice="big5hkscs").source == "user"
