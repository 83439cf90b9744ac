"""Find an AI-Hub tree's label files and videos, unpacked or inside zip parts (`TS_01.zip`, ...).

Every `.json` label and every video is an `Entry`: a plain file, or a member of a zip found
anywhere under the tree (named `ARCHIVE.zip::MEMBER`, see kvcap.video.source). Labels are
read straight from their zip; videos STORED in a zip are used in place, DEFLATED ones can be
unpacked once (`unpack`). `Entry.where` holds the folders a split is read from: the path
relative to the tree with the archive name as one more folder (`1.Training/원천데이터/TS_01.zip/`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kvcap.video.listing import VIDEO_EXTENSIONS
from kvcap.video.source import zip_member_ref
from kvcap.video.ziparchive import DAMAGED_MEMBER_ERRORS, open_zip

LABEL_EXTENSIONS = frozenset({".json"})


@dataclass(frozen=True)
class Entry:
    """One label file or video, plain or zipped."""

    ref: Path  # a plain path, or the `ARCHIVE.zip::MEMBER` reference
    stem: str  # pairs a label with its video
    where: tuple[str, ...]  # folders from the tree's root (the archive counts as one)
    archive: Path | None = None  # the zip holding it, if any
    member: str | None = None  # its name inside that zip
    deflated: bool = False  # compressed inside the zip (slow to seek: unpack it)
    size: int = 0  # bytes (uncompressed)

    @property
    def zipped(self) -> bool:
        return self.archive is not None


@dataclass
class Scan:
    """What `scan` found under a tree."""

    labels: list[Entry] = field(default_factory=list)
    videos: list[Entry] = field(default_factory=list)
    zips: list[Path] = field(default_factory=list)  # archives read
    bad_zips: list[tuple[Path, str]] = field(default_factory=list)  # (archive, one-line reason)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") for part in parts)


def _kind(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in LABEL_EXTENSIONS:
        return "label"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix == ".zip":
        return "zip"
    return None


def _within(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def scan(root: Path) -> Scan:
    """Labels under `root/labels` (when that folder exists, else anywhere), videos likewise under
    `root/videos`; zip archives anywhere under those are opened and their members listed."""
    label_base = root / "labels" if (root / "labels").is_dir() else root
    video_base = root / "videos" if (root / "videos").is_dir() else root
    found = Scan()
    visited: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):  # parts may be links to other disks
        real = os.path.realpath(folder)
        if real in visited:  # a symlink cycle
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            kind = _kind(name)
            where = path.relative_to(root).parts[:-1]
            if kind == "label" and _within(path, label_base):
                found.labels.append(Entry(ref=path, stem=path.stem, where=where, size=_size(path)))
            elif kind == "video" and _within(path, video_base):
                found.videos.append(Entry(ref=path, stem=path.stem, where=where, size=_size(path)))
            elif kind == "zip" and (_within(path, label_base) or _within(path, video_base)):
                _scan_zip(path, root, _within(path, label_base), _within(path, video_base), found)
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _scan_zip(archive: Path, root: Path, labels: bool, videos: bool, found: Scan) -> None:
    try:
        with open_zip(archive) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError) as exc:
        found.bad_zips.append((archive, f"not a readable zip archive ({exc})"))
        return
    found.zips.append(archive)
    outer = archive.relative_to(root).parts
    for info in infos:
        member = Path(info.filename)
        if info.is_dir() or _hidden(member.parts):
            continue
        kind = _kind(member.name)
        if (kind == "label" and labels) or (kind == "video" and videos):
            entries = found.labels if kind == "label" else found.videos
            entries.append(Entry(
                ref=zip_member_ref(archive, info.filename), stem=member.stem, where=outer + member.parts[:-1],
                archive=archive, member=info.filename, deflated=info.compress_type != zipfile.ZIP_STORED,
                size=info.file_size,
            ))


class ZipReader:
    """Reads label members, keeping each archive open while the import runs."""

    def __init__(self) -> None:
        self._open: dict[Path, zipfile.ZipFile] = {}

    def read(self, entry: Entry) -> bytes:
        if entry.archive is None:
            return Path(entry.ref).read_bytes()
        zf = self._open.get(entry.archive)
        if zf is None:
            zf = self._open[entry.archive] = open_zip(entry.archive)
        return zf.read(entry.member)

    def close(self) -> None:
        for zf in self._open.values():
            zf.close()
        self._open.clear()


def unpack_target(entry: Entry, dest: Path) -> Path:
    """Where a zipped video is unpacked: DEST/<archive stem>/<member path>."""
    assert entry.archive is not None and entry.member is not None
    return dest / entry.archive.stem / Path(entry.member)


def unpack(
    entries: list[Entry], dest: Path, progress: Callable[[int], None] | None = None,
) -> tuple[dict[Path, Path], list[tuple[Path, str]]]:
    """Unpack zipped videos into `dest` once (a file already there with the right size is kept).

    Returns ({reference: unpacked path}, [(reference, reason)] for members that failed, e.g. a
    CRC error). Each file is written beside its target and renamed into place, so an
    interrupted unpack never leaves a half file under the final name. `progress(bytes)` is
    called as data is written.
    """
    done: dict[Path, Path] = {}
    failed: list[tuple[Path, str]] = []
    for entry in entries:
        target = unpack_target(entry, dest)
        if target.is_file() and target.stat().st_size == entry.size:
            done[entry.ref] = target
            if progress:
                progress(entry.size)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        try:
            with open_zip(entry.archive) as zf, zf.open(entry.member) as src, open(partial, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
        except (*DAMAGED_MEMBER_ERRORS, OSError, EOFError) as exc:
            partial.unlink(missing_ok=True)
            failed.append((entry.ref, f"cannot unpack ({exc})"))
            continue
        os.replace(partial, target)
        done[entry.ref] = target
    return done, failed
