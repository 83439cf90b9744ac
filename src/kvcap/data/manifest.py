"""The dataset manifest: JSONL, one clip a line.

    {"id": "synth-00001", "video": "clips/synth-00001.mp4", "caption": "...", "split": "train",
     "attributes": {...}}

`video` is stored relative to the manifest's folder, so a dataset folder can be moved or
copied as a whole; `read_manifest` hands it back as an absolute path. `caption` is one
reference or a list of several. `attributes` is optional free-form ground truth (synthetic
scenes put their time of day, scene, weather ... there).

`video` may name a member of a zip archive, as AI-Hub parts arrive:

    {"id": "A001", "video": "parts/TS_01.zip::clips/A001.mp4", ...}

the archive's path (relative to the manifest's folder like any other), `::`, then the member's
name inside the archive (kvcap.video.source). Every reader accepts it: the trainer, the feature
cache (keyed by a hash of the member's bytes), `kvcap caption`, SigLIP2 frames, `kvcap probe`.
Members stored uncompressed are read in place; compressed ones work but seek slowly.

Every problem with a manifest is a `ManifestError` whose message is one line,
`<file>:<line>: <reason>`, so a user can jump straight to it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kvcap.errors import KvcapError
from kvcap.fsutil import atomic_write_text
from kvcap.records.jsonl import iter_jsonl

SPLITS = ("train", "val", "test")
REQUIRED_KEYS = ("id", "video", "caption", "split")


class ManifestError(KvcapError, ValueError):
    """A manifest that cannot be used; the message is `<file>[:<line>]: <reason>`."""


@dataclass
class ManifestItem:
    """One clip of a dataset."""

    id: str
    """Unique within the manifest; names the clip in logs, samples and scores."""
    video: Path
    """Absolute path of the clip (stored relative to the manifest's folder on disk)."""
    caption: str | list[str]
    """The reference caption, or several references for one clip."""
    split: str
    """`train`, `val` or `test`."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Optional ground truth the caption was written from (synthetic scenes fill it)."""

    @property
    def references(self) -> list[str]:
        """The caption(s) as a list, which is what scorers want."""
        return [self.caption] if isinstance(self.caption, str) else list(self.caption)


def _fail(path: Path, line: int | None, reason: str) -> ManifestError:
    where = f"{path}:{line}" if line is not None else str(path)
    return ManifestError(f"{where}: {reason}")


def _check_record(record: Any, path: Path, line: int) -> None:
    """Raise ManifestError for a record that is not a well-typed manifest line."""
    if not isinstance(record, dict):
        raise _fail(path, line, f"expected a JSON object, got {type(record).__name__}")
    for key in REQUIRED_KEYS:
        if key not in record:
            raise _fail(path, line, f"missing key '{key}'")
    for key in ("id", "video", "split"):
        value = record[key]
        if not isinstance(value, str):
            raise _fail(path, line, f"key '{key}' must be a string, got {type(value).__name__}")
        if not value.strip():
            raise _fail(path, line, f"key '{key}' is empty")
    caption = record["caption"]
    if isinstance(caption, str):
        if not caption.strip():
            raise _fail(path, line, "key 'caption' is empty")
    elif isinstance(caption, list):
        if not caption:
            raise _fail(path, line, "key 'caption' is an empty list")
        for i, ref in enumerate(caption):
            if not isinstance(ref, str):
                raise _fail(path, line, f"key 'caption'[{i}] must be a string, got {type(ref).__name__}")
            if not ref.strip():
                raise _fail(path, line, f"key 'caption'[{i}] is empty")
    else:
        raise _fail(path, line, f"key 'caption' must be a string or a list of strings, got {type(caption).__name__}")
    if record["split"] not in SPLITS:
        raise _fail(path, line, f"key 'split' is {record['split']!r}; expected one of {', '.join(SPLITS)}")
    attributes = record.get("attributes", {})
    if attributes is not None and not isinstance(attributes, dict):
        raise _fail(path, line, f"key 'attributes' must be an object, got {type(attributes).__name__}")


def read_manifest(path: str | Path) -> list[ManifestItem]:
    """Read and validate a manifest; `video` comes back absolute (resolved against its folder).

    Blank lines are skipped. Raises ManifestError (one line naming file and line) for a missing
    or empty file, a line that is not JSON, a missing key, a wrong type, an unknown split or a
    duplicate id.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, None, "manifest not found")
    if path.is_dir():
        raise _fail(path, None, "is a directory, expected a manifest JSONL file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _fail(path, None, f"cannot read ({exc.strerror})") from None
    base = path.resolve().parent
    items: list[ManifestItem] = []
    first_line_of: dict[str, int] = {}
    for number, record in iter_jsonl(text):
        if isinstance(record, json.JSONDecodeError):
            raise _fail(path, number, f"not valid JSON ({record.msg} at column {record.colno})") from None
        _check_record(record, path, number)
        item_id = record["id"]
        if item_id in first_line_of:
            raise _fail(path, number, f"duplicate id {item_id!r} (first on line {first_line_of[item_id]})")
        first_line_of[item_id] = number
        video = Path(record["video"])
        items.append(
            ManifestItem(
                id=item_id,
                video=video if video.is_absolute() else Path(os.path.normpath(base / video)),
                caption=record["caption"],
                split=record["split"],
                attributes=dict(record.get("attributes") or {}),
            )
        )
    if not items:
        raise _fail(path, None, "empty manifest (no clips)")
    return items



def read_splits(path: str | Path) -> tuple[list[ManifestItem], list[ManifestItem]]:
    """(train clips, val clips) of a manifest; ManifestError when it has no training clip."""
    items = read_manifest(path)
    train = [it for it in items if it.split == "train"]
    if not train:
        raise ManifestError(f"{path}: the training split is empty (no line has \"split\": \"train\")")
    return train, [it for it in items if it.split == "val"]

def item_to_record(item: ManifestItem, base: Path) -> dict[str, Any]:
    """The JSON object for one line, with `video` relative to `base` (POSIX separators)."""
    video = Path(item.video)
    if video.is_absolute():
        try:
            video = Path(os.path.relpath(video, base))
        except ValueError:  # another drive on Windows: keep it absolute
            pass
    record: dict[str, Any] = {
        "id": item.id,
        "video": video.as_posix(),
        "caption": item.caption,
        "split": item.split,
    }
    if item.attributes:
        record["attributes"] = item.attributes
    return record


def write_manifest(path: str | Path, items: Iterable[ManifestItem]) -> None:
    """Write `items` as a manifest in one atomic rename; `video` is stored relative to it.

    Relative `video` paths in `items` are taken as already relative to the manifest's folder.
    Raises ManifestError for a duplicate id or an unknown split (the file is then not touched).
    """
    path = Path(path)
    base = path.parent.resolve()
    lines: list[str] = []
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise _fail(path, None, f"duplicate id {item.id!r} in the items to write")
        if item.split not in SPLITS:
            raise _fail(path, None, f"item {item.id!r} has split {item.split!r}; expected one of {', '.join(SPLITS)}")
        seen.add(item.id)
        lines.append(json.dumps(item_to_record(item, base), ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
