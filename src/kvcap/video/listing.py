"""Find the videos under folders: recursive, deterministic, hidden entries skipped."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from kvcap.errors import KvcapError

# The one list of video containers every folder scan uses (caption, probe, AI-Hub import).
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi",
    ".ts", ".mts", ".m2ts",   # MPEG transport streams (broadcast, AVCHD camcorders)
    ".mpg", ".mpeg",          # MPEG program streams
    ".flv", ".wmv", ".3gp",
})


def has_video_extension(path: str | Path) -> bool:
    """True when the name ends in one of `VIDEO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, visited: set[str] | None = None, skipped: list[Path] | None = None) -> Iterable[Path]:
    """Video-named entries under `folder`, in sorted order, skipping hidden files and folders.

    Entries are listed by name, not by type: a directory called `x.mp4` or a dangling
    symlink `y.mp4` is yielded (and not descended into) so the batch reports it as an error
    rather than dropping it silently.
    """
    visited = set() if visited is None else visited
    real = os.path.realpath(folder)
    if real in visited:  # a symlink cycle
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if _is_hidden(entry.name):
            continue
        path = Path(entry.path)
        if has_video_extension(entry.name):
            yield path
        elif entry.is_dir(follow_symlinks=True):
            # Following links lets users point at folders elsewhere; `visited` cuts cycles.
            yield from _walk(path, visited, skipped)
        elif skipped is not None:
            skipped.append(path)


def list_videos(paths: Iterable[str | Path] | str | Path, skipped: list[Path] | None = None) -> list[Path]:
    """Every video under `paths` (files or folders), sorted per argument, duplicates dropped.

    - Folders are searched recursively for the `VIDEO_EXTENSIONS` (case-insensitive); other
      files found there are appended to `skipped` when given (to say "skipped N files").
    - Hidden files and folders (leading dot) inside a folder are skipped.
    - A path named explicitly is kept whatever it is (even missing or with another
      extension): the user asked for it, so the batch must report on it.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not has_video_extension(path):
            found = _walk(path, skipped=skipped)
        else:
            found = [path]
        for item in found:
            key = Path(os.path.abspath(item))
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


class NoVideosError(KvcapError):
    """No video under the paths given (one line; says how many other files were passed over)."""

    def __init__(self, paths: Iterable[str | Path], skipped: list[Path] | None = None):
        shown = ", ".join(str(p) for p in paths)
        others = f" ({plural(len(skipped), 'other file')}; videos end in {' '.join(sorted(VIDEO_EXTENSIONS))})" if skipped else ""
        super().__init__(f"no videos found under {shown}{others}")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 video`, `2 videos` (`nouns` for irregular plurals)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
