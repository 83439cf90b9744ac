"""A video source: a plain file, or a member of a zip archive named `ARCHIVE.zip::MEMBER`.

AI-Hub ships its parts as `TS_01.zip`, `TL_01.zip`, ... Videos stored uncompressed in a zip
(ZIP_STORED, the usual case for video) are read in place: PyAV opens the member through a
seekable file object (`zipfile.ZipFile.open`, seekable since Python 3.7), about as fast as a
plain file. A DEFLATED member works too but every backward seek re-inflates from the start
(measured 3.5 s vs 0.2 s for a 48 MB clip with 8 seeks), so `kvcap data import-aihub
--unpack-to DIR` unpacks those once.

The reference form, everywhere a video path is accepted (manifests, `kvcap probe`,
`kvcap caption`, the trainer, the feature cache, SigLIP2 frames):

    parts/TS_01.zip::clips/A001.mp4        archive path (relative or absolute) :: member name

The archive part ends in `.zip` (any case) right before the first `::`; the member is its
name inside the archive (POSIX separators). A real file whose name contains `.zip::` wins.
decord cannot read a file object, so zip members always decode with PyAV.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from kvcap.video.errors import DamagedZipMember, NotAVideo, VideoEmpty, VideoMissing, VideoUnreadable
from kvcap.video.ziparchive import is_damaged_member_error, open_zip

ZIP_SEPARATOR = "::"
_ZIP_REF = re.compile(r"^(?P<archive>.*?\.zip)::(?P<member>.+)$", re.IGNORECASE | re.DOTALL)
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipMember:
    """One member of a zip archive."""

    archive: Path
    member: str

    @property
    def ref(self) -> str:
        return f"{self.archive}{ZIP_SEPARATOR}{self.member}"


def zip_member_ref(archive: str | Path, member: str) -> Path:
    """The path-like reference `ARCHIVE::MEMBER` (what manifests store, relative or absolute)."""
    return Path(f"{Path(archive)}{ZIP_SEPARATOR}{member}")


def parse_source(path: str | Path) -> Path | ZipMember:
    """`ZipMember` for `ARCHIVE.zip::MEMBER` (when no real file has that name), else the path."""
    text = os.fspath(path)
    match = _ZIP_REF.match(text)
    if match is None or os.path.lexists(text):
        return Path(text)
    return ZipMember(Path(match["archive"]), match["member"])


def is_zip_member(path: str | Path) -> bool:
    return isinstance(parse_source(path), ZipMember)


def _member_info(source: ZipMember, zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(source.member)
    except KeyError:
        raise VideoMissing(source.ref, f"no member {source.member!r} in {source.archive}") from None
    if info.is_dir():
        raise NotAVideo(source.ref, "is a directory inside the zip, not a video file")
    if info.flag_bits & 0x1:
        raise VideoUnreadable(source.ref, "encrypted zip member (unpack it first)")
    if info.file_size == 0:
        raise VideoEmpty(source.ref, "empty file (0 bytes)")
    return info


# Reading a zip's central directory costs ~0.1 s for 10,000 members (measured), and a clip is
# opened several times (hash, probe, sample), so each process keeps its last archives open.
# A shared ZipFile is thread-safe for reading (zipfile locks its file per read); the key holds
# the pid so a forked child never shares its parent's file offset, and mtime/size so a
# rewritten archive is opened afresh.
MAX_OPEN_ARCHIVES = 16
_ARCHIVES: OrderedDict[tuple[str, int, int, int], zipfile.ZipFile] = OrderedDict()
_ARCHIVES_LOCK = threading.Lock()


def shared_archive(path: str | Path) -> zipfile.ZipFile:
    """An open ZipFile for `path`, shared in this process (do not close it). Raises OSError,
    zipfile.BadZipFile."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size, os.getpid())
    with _ARCHIVES_LOCK:
        zf = _ARCHIVES.get(key)
        if zf is not None:
            _ARCHIVES.move_to_end(key)
            return zf
    opened = open_zip(path)  # outside the lock: it is the slow part
    with _ARCHIVES_LOCK:
        zf = _ARCHIVES.setdefault(key, opened)
        if zf is not opened:
            opened.close()
        while len(_ARCHIVES) > MAX_OPEN_ARCHIVES:
            # Not closed here: a thread may be about to open a member of it; the ZipFile
            # closes itself once no one holds it.
            _ARCHIVES.popitem(last=False)
    return zf


def _archive_for_hash(source: ZipMember) -> zipfile.ZipFile:
    """shared_archive, with a damaged archive as an OSError (what the feature cache reports)."""
    try:
        return shared_archive(source.archive)
    except zipfile.BadZipFile as exc:
        raise OSError(f"{source.archive}: not a readable zip archive ({exc})") from None


def _open_archive(source: ZipMember) -> zipfile.ZipFile:
    archive = source.archive
    if not archive.exists():
        raise VideoMissing(source.ref, f"zip archive not found: {archive}")
    try:
        return shared_archive(archive)
    except zipfile.BadZipFile as exc:
        raise VideoUnreadable(source.ref, f"{archive} is not a readable zip archive ({exc})") from None
    except PermissionError:
        raise VideoUnreadable(source.ref, f"{archive}: permission denied") from None
    except OSError as exc:
        raise VideoUnreadable(source.ref, f"{archive}: {exc.strerror or exc}") from None


@contextmanager
def open_source(path: str | Path) -> Iterator[BinaryIO]:
    """A binary, seekable file object on a plain file or a zip member (typed VideoErrors)."""
    source = parse_source(path)
    if isinstance(source, Path):
        try:
            handle = open(source, "rb")
        except FileNotFoundError:
            raise VideoMissing(source, "file not found") from None
        except OSError as exc:
            raise VideoUnreadable(source, exc.strerror or str(exc)) from None
        with handle:
            yield handle
        return
    zf = _open_archive(source)
    _member_info(source, zf)
    try:
        with zf.open(source.member) as member:
            yield member
    except Exception as exc:  # raised by the member's reads, wherever the caller made them
        if is_damaged_member_error(exc):
            raise DamagedZipMember(source.ref, f"damaged zip member ({exc})") from None
        raise


def stat_key(path: str | Path) -> tuple[str, int, int, int]:
    """(resolved reference, size, mtime_ns, inode) that changes when the bytes may have changed.

    For a member: the archive's mtime and inode, the member's size. Raises OSError
    (FileNotFoundError) for a missing file, archive or member.
    """
    source = parse_source(path)
    if isinstance(source, Path):
        st = source.stat()
        return (str(source.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    st = source.archive.stat()
    try:
        info = _archive_for_hash(source).getinfo(source.member)
    except KeyError:
        raise FileNotFoundError(2, f"no member {source.member!r} in {source.archive}") from None
    ref = f"{source.archive.resolve()}{ZIP_SEPARATOR}{source.member}"
    return (ref, info.file_size, st.st_mtime_ns, st.st_ino)


def content_hash(path: str | Path) -> str:
    """sha256 (hex) of a plain file's bytes, or of a zip member's (uncompressed) bytes."""
    source = parse_source(path)
    digest = hashlib.sha256()
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    try:
        handle = _archive_for_hash(source).open(source.member)
    except KeyError:
        raise FileNotFoundError(2, f"no member {source.member!r} in {source.archive}") from None
    try:
        with handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except Exception as exc:  # a CRC error, broken deflate data, a truncated member
        if not is_damaged_member_error(exc):
            raise
        raise OSError(f"{source.ref}: damaged zip member ({exc})") from None
    return digest.hexdigest()


def zip_video_members(archive: str | Path, extensions) -> list[Path]:
    """References to every member of `archive` whose name ends in one of `extensions`, sorted."""
    archive = Path(archive)
    with open_zip(archive) as zf:
        names = sorted(
            info.filename for info in zf.infolist()
            if not info.is_dir() and Path(info.filename).suffix.lower() in extensions
            and not any(part.startswith(".") for part in Path(info.filename).parts)
        )
    return [zip_member_ref(archive, name) for name in names]


def output_key(relative: str) -> str:
    """A video's name in caption outputs: `TS_01.zip::a/b.mp4` -> `TS_01.zip/a/b.mp4`."""
    return relative.replace(ZIP_SEPARATOR, "/")


@contextmanager
def open_member_container(path: str | Path, open_failure) -> Iterator[object]:
    """`av.open` on a zip member's file object; `open_failure(path, exc)` maps av.open's errors."""
    import av

    from kvcap.video.avcompat import open_input

    with open_source(path) as handle:
        try:
            container = open_input(handle)
        except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
            raise open_failure(Path(path), exc) from None
        try:
            yield container
        finally:
            container.close()
