"""The videos one command-line input names: a folder, a video, a zip member reference
(`a.zip::b.mp4`), a `.zip` part (its video members) or a manifest `.jsonl` (its clips' videos).

`kvcap caption` (kvcap.caption.inputs) and `kvcap probe` take their inputs through here. The
reference form itself is kvcap.video.source's; the manifest is kvcap.data.manifest's.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from kvcap.data.manifest import read_manifest
from kvcap.video.listing import VIDEO_EXTENSIONS, list_videos
from kvcap.video.source import ZipMember, is_zip_member, parse_source, zip_video_members

MANIFEST_SUFFIXES = (".jsonl",)


def expand_input(path: str | Path) -> list[Path] | None:
    """The videos one input names when it is a `.zip` (its video members, as references) or a
    manifest `.jsonl` (its clips' videos, absolute); None for anything else (a folder, a video,
    a zip member reference). A bad manifest raises its one-line ManifestError."""
    given = Path(path)
    suffix = given.suffix.lower()
    if suffix == ".zip" and given.is_file():
        try:
            return zip_video_members(given, VIDEO_EXTENSIONS)
        except (zipfile.BadZipFile, OSError):
            return [given]  # the reader reports it
    if suffix in MANIFEST_SUFFIXES and given.is_file():
        return [Path(item.video) for item in read_manifest(given)]
    return None


def expand_inputs(paths, skipped: list[Path] | None = None) -> list[Path]:
    """Every video under `paths`: folders searched (kvcap.video.list_videos; files there that are
    not videos go to `skipped`), zips and manifests expanded (`expand_input`), anything else kept
    as given; duplicates dropped."""
    out: list[Path] = []
    seen: set[str] = set()
    for raw in [paths] if isinstance(paths, (str, Path)) else paths:
        found = expand_input(raw)
        for item in found if found is not None else list_videos([raw], skipped=skipped):
            key = os.path.abspath(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def input_root(path: str | Path) -> Path:
    """The folder output names are relative to: the folder itself, a zip member's archive's
    folder, else the file's folder."""
    given = Path(path)
    if given.is_dir():
        return given
    if given.suffix.lower() in MANIFEST_SUFFIXES and given.is_file():
        # A manifest's clips: the deepest folder holding all of them, so keys stay unique.
        videos = expand_input(given) or []
        folders = [str(input_root(v)) if is_zip_member(v) else os.path.dirname(os.path.abspath(v)) for v in videos]
        return Path(os.path.commonpath(folders)) if folders else given.parent
    source = parse_source(given)
    return source.archive.parent if isinstance(source, ZipMember) else given.parent
