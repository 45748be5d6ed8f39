"""Safe unpacking of uploaded zip archives into a work directory.

An upload is hostile until proven otherwise: member names may climb out of
the target directory, point at symlinks, or promise a few bytes and inflate
to gigabytes. :func:`unpack_zip` checks every member before writing anything
and counts the bytes it actually writes, because a zip's size headers can lie.
"""

from __future__ import annotations

import logging
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sdi.errors import IngestError, TooLargeError
from sdi.settings import Settings

__all__ = ["check_zip", "is_zip", "unpack_zip"]

LOGGER = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]  # the safe relative path, split into components


def is_zip(path: Path) -> bool:
    """Whether ``path`` starts like a zip archive (by content, not by name)."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) in _ZIP_MAGIC
    except OSError:
        return False


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, re-decoded as UTF-8 when the zip did not say so.

    Many zip tools write UTF-8 names without setting the UTF-8 flag, and
    Python then decodes them as cp437; Chinese file names come out garbled.
    """
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def _check_member(info: zipfile.ZipInfo, archive: str) -> tuple[str, ...]:
    """Refuse a member whose name or type could write outside the target."""
    name = _member_name(info)
    shown = name
    if "\x00" in name:
        raise IngestError(f"{archive}: member {shown!r} has a NUL byte in its name.")
    normalised = name.replace("\\", "/")
    if (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")
        or normalised.startswith("//")
    ):
        raise IngestError(
            f"{archive}: member {shown!r} has an absolute path; "
            "the zip must hold relative paths only."
        )
    parts = tuple(p for p in PurePosixPath(normalised).parts if p not in ("", "."))
    if ".." in parts:
        raise IngestError(
            f"{archive}: member {shown!r} points outside the archive ('..'); "
            "refusing to unpack it."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise IngestError(
            f"{archive}: member {shown!r} is a symbolic link; "
            "the zip must hold plain files only."
        )
    if info.flag_bits & 0x1:
        raise IngestError(
            f"{archive}: member {shown!r} is encrypted; "
            "upload the zip without a password."
        )
    return parts


def _ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and dotfiles are packaging noise, not data."""
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _open(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError(
            f"{archive.name} is not a valid zip archive ({exc})."
        ) from exc


def _members(zf: zipfile.ZipFile, name: str, settings: Settings) -> list[_Member]:
    """The data members of an opened zip, after every check made before writing."""
    infos = zf.infolist()
    if len(infos) > settings.max_zip_members:
        raise TooLargeError(
            f"{name} holds {len(infos)} files; at most "
            f"{settings.max_zip_members} are accepted in one zip."
        )
    members = []
    for info in infos:
        parts = _check_member(info, name)
        if info.is_dir() or _ignored(parts):
            continue
        members.append(_Member(info, parts))
    if not members:
        raise IngestError(f"{name} is empty: it holds no data files.")
    declared = sum(m.info.file_size for m in members)
    if declared > settings.max_unpacked_bytes:
        raise TooLargeError(
            f"{name} would unpack to {_human(declared)}, over the limit of "
            f"{_human(settings.max_unpacked_bytes)}."
        )
    return members


def check_zip(archive: Path, *, settings: Settings) -> None:
    """Refuse what :func:`unpack_zip` refuses before writing anything.

    Reads only the zip's directory, so it is cheap enough to run when an
    upload arrives (the admin app does, to answer a bad zip at once).
    """
    with _open(archive) as zf:
        _members(zf, archive.name, settings)


def unpack_zip(archive: Path, dest: Path, *, settings: Settings) -> list[Path]:
    """Unpack ``archive`` into the directory ``dest``; return the files written.

    Raises ``IngestError`` for a file that is not a zip, an empty or encrypted
    zip, and members with absolute paths, ``..`` or symlinks; raises
    ``TooLargeError`` when there are more than ``settings.max_zip_members``
    members or the contents exceed ``settings.max_unpacked_bytes`` (by the
    declared sizes, or by the bytes actually inflated). ``__MACOSX/`` and
    dotfiles are skipped; folders inside the zip are kept.
    """
    name = archive.name
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with _open(archive) as zf:
        members = _members(zf, name, settings)
        written: list[Path] = []
        budget = settings.max_unpacked_bytes
        for member in members:
            target = root.joinpath(*member.parts)
            # Belt and braces: the name checks above should make this impossible.
            if not target.resolve().is_relative_to(root):
                raise IngestError(
                    f"{name}: member {member.info.filename!r} points outside "
                    "the archive; refusing to unpack it."
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IngestError(
                    f"{name}: member {member.info.filename!r} cannot be unpacked "
                    f"({exc.strerror}); a file and a folder share its path."
                ) from exc
            budget -= _extract(zf, member.info, target, budget, name, settings)
            written.append(target)
    LOGGER.debug("unpacked %d files from %s into %s", len(written), name, dest)
    return written


def _extract(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    budget: int,
    archive: str,
    settings: Settings,
) -> int:
    """Write one member, stopping as soon as the byte budget is spent."""
    count = 0
    try:
        with zf.open(info) as src, target.open("xb") as out:
            while chunk := src.read(_CHUNK):
                count += len(chunk)
                if count > budget:
                    raise TooLargeError(
                        f"{archive} unpacks to more than "
                        f"{_human(settings.max_unpacked_bytes)} (the limit); "
                        f"stopped at member {info.filename!r}."
                    )
                out.write(chunk)
    except FileExistsError as exc:
        raise IngestError(
            f"{archive}: member {info.filename!r} appears twice in the zip."
        ) from exc
    except IsADirectoryError as exc:
        raise IngestError(
            f"{archive}: member {info.filename!r} has the same path as a folder "
            "in the zip."
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise IngestError(
            f"{archive}: member {info.filename!r} is damaged ({exc}); "
            "create the zip again and re-upload it."
        ) from exc
    except NotImplementedError as exc:
        raise IngestError(
            f"{archive}: member {info.filename!r} uses a compression method "
            f"sdi cannot read ({exc}); re-create the zip with ordinary "
            "(deflate) compression."
        ) from exc
    except RuntimeError as exc:  # zipfile says "encrypted" this way
        raise IngestError(
            f"{archive}: member {info.filename!r} cannot be read ({exc})."
        ) from exc
    except TooLargeError:
        target.unlink(missing_ok=True)
        raise
    return count
