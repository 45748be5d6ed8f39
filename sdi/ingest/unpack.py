"""Safe unpacking of uploaded zip archives into a work directory.

An upload is hostile until proven otherwise: member names may climb out of
the target directory, point at symlinks, or promise a few bytes and inflate
to gigabytes. :func:`unpack_zip` checks every member before writing anything
(from the zip's central directory alone: names, the declared total against
``SDI_MAX_UNPACKED_BYTES`` and the compression ratio against
``SDI_MAX_ZIP_RATIO``), and counts the bytes it actually writes, because a
zip's size headers can lie: a member that inflates past its declared size or
past the ratio is stopped mid-copy.
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

__all__ = ["RATIO_FLOOR", "check_zip", "is_zip", "unpack_zip"]

LOGGER = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
#: Members (and zips) smaller than this unpacked are not judged by their
#: compression ratio: a small blank .dbf may compress 1000:1 and harms no one.
RATIO_FLOOR = 1024 * 1024
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


def _ratio_error(
    archive: str,
    what: str,
    unpacked: int,
    packed: int,
    limit: int,
    outcome: str = "Nothing was unpacked.",
) -> TooLargeError:
    ratio = unpacked / max(packed, 1)
    return TooLargeError(
        f"{archive} was refused as a zip bomb: {what} would expand {ratio:,.0f} "
        f"times ({_human(packed)} to {_human(unpacked)}); the limit is {limit:,} "
        f"times (SDI_MAX_ZIP_RATIO). {outcome}"
    )


def _check_ratio(
    infos: list[zipfile.ZipInfo], name: str, size: int, settings: Settings
) -> None:
    """Refuse, from the declared sizes alone, what expands like a zip bomb.

    ``size`` is the archive's size on disk: compressed sizes adding up to more
    than that are lies (the declared sizes are then worth nothing).
    """
    limit = settings.max_zip_ratio
    packed = sum(i.compress_size for i in infos)
    if packed > size:
        raise IngestError(
            f"{name} is damaged: its directory declares {_human(packed)} of "
            f"compressed data in a file of {_human(size)}. Create the zip again."
        )
    for info in infos:
        unpacked = info.file_size
        if unpacked > RATIO_FLOOR and unpacked > limit * max(info.compress_size, 1):
            raise _ratio_error(
                name, f"member {info.filename!r}", unpacked, info.compress_size, limit
            )
    total = sum(i.file_size for i in infos)
    if total > RATIO_FLOOR and total > limit * max(packed, 1):
        raise _ratio_error(name, "its contents", total, packed, limit)


def _members(
    zf: zipfile.ZipFile, name: str, settings: Settings, size: int
) -> list[_Member]:
    """The data members of an opened zip, after every check made before writing.

    Only the central directory is read: names, types, declared sizes.
    """
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
    # Every member counts towards the ratio, skipped ones too: they are inflated
    # by nobody, but a zip that declares them is lying or hostile all the same.
    _check_ratio(infos, name, size, settings)
    return members


def check_zip(archive: Path, *, settings: Settings) -> None:
    """Refuse what :func:`unpack_zip` refuses before writing anything.

    Reads only the zip's directory, so it is cheap enough to run when an
    upload arrives (the admin app does, to answer a bad zip at once).
    """
    with _open(archive) as zf:
        _members(zf, archive.name, settings, archive.stat().st_size)


def unpack_zip(archive: Path, dest: Path, *, settings: Settings) -> list[Path]:
    """Unpack ``archive`` into the directory ``dest``; return the files written.

    Raises ``IngestError`` for a file that is not a zip, an empty or encrypted
    zip, and members with absolute paths, ``..`` or symlinks; raises
    ``TooLargeError`` when there are more than ``settings.max_zip_members``
    members, the contents exceed ``settings.max_unpacked_bytes`` (by the
    declared sizes, or by the bytes actually inflated), or they expand more
    than ``settings.max_zip_ratio`` times (declared, or actually inflated, or
    past a member's declared size). ``__MACOSX/`` and dotfiles are skipped;
    folders inside the zip are kept.
    """
    name = archive.name
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with _open(archive) as zf:
        members = _members(zf, name, settings, archive.stat().st_size)
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
    """Write one member, stopping as soon as the byte budget is spent.

    Also stopped: a member inflating past its declared size, or past the
    ratio limit (zipfile itself stops at the declared size and then reports a
    bad CRC, but the count here does not depend on that).
    """
    count = 0
    ratio_cap = max(RATIO_FLOOR, settings.max_zip_ratio * max(info.compress_size, 1))
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
                if count > info.file_size:
                    raise TooLargeError(
                        f"{archive}: member {info.filename!r} inflates past the "
                        f"{_human(info.file_size)} its zip directory declares; "
                        "refusing a zip whose sizes lie."
                    )
                if count > ratio_cap:
                    raise _ratio_error(
                        archive,
                        f"member {info.filename!r}",
                        count,
                        info.compress_size,
                        settings.max_zip_ratio,
                        "Unpacking was stopped and its files removed.",
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
        target.unlink(missing_ok=True)
        raise IngestError(
            f"{archive}: member {info.filename!r} is damaged ({exc}): its data "
            "does not match the size or checksum its zip directory declares. "
            "Create the zip again and re-upload it."
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
