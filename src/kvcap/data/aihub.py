"""Import an AI-Hub video-caption dataset ("대한민국 배경영상 상세묘사" and its kind) as manifests.

The tree holds label JSON files and videos that share a file stem, in any folder layout:

    SRC/labels/**/<stem>.json   {"annotation": {"description_kr": "..."}, ...}
    SRC/videos/**/<stem>.mp4

(or AI-Hub's own `Training/02.라벨링데이터/TL_*/...json` + `Training/01.원천데이터/TS_*/...mp4`).
Labels are found under `SRC/labels` when that folder exists, else anywhere under SRC; videos
likewise under `SRC/videos`. Each pair becomes a manifest line; the split is the dataset's own
where the path says so (a folder named Training/Validation/Test, or AI-Hub's TL_/TS_, VL_/VS_
prefixes), else a seeded random split. Written: `OUT/train.jsonl`, `OUT/val.jsonl` (and
`OUT/test.jsonl` when there is a test split) and `OUT/manifest.jsonl` with every line and its
split. Unpaired labels and videos, unreadable JSON and labels without a caption are reported,
never fatal.
"""

from __future__ import annotations

from kvcap.errors import KvcapError

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcap.data.manifest import ManifestItem, write_manifest

from kvcap.video.listing import VIDEO_EXTENSIONS  # noqa: E402  (the one list of video containers)

# Where a caption may sit in a label file, most specific first. Each path is a tuple of dict
# keys and list indices.
CAPTION_PATHS: tuple[tuple[Any, ...], ...] = (
    ("annotation", "description_kr"),
    ("annotation", "description"),
    ("annotation", "caption"),
    ("annotations", 0, "description_kr"),
    ("annotations", 0, "description"),
    ("annotations", 0, "caption"),
    ("annotation", 0, "description_kr"),
    ("annotation", 0, "description"),
    ("description_kr",),
    ("description",),
    ("caption_kr",),
    ("caption",),
    ("captions",),
    ("text",),
)

# Path components that name a split (lower-cased), and AI-Hub's folder prefixes.
_SPLIT_WORDS = {
    "training": "train", "train": "train",
    "validation": "val", "valid": "val", "val": "val",
    "test": "test", "testing": "test",
}
_SPLIT_PREFIX = re.compile(r"^(t[ls]|v[ls])_", re.IGNORECASE)


class AIHubImportError(KvcapError, ValueError):
    """The source cannot be imported at all (one line, names the path)."""


@dataclass
class ImportReport:
    """What `import_aihub` did and what it could not use."""

    out: Path
    counts: dict[str, int] = field(default_factory=dict)        # split -> clips written
    split_source: str = "dataset"                                # dataset | seeded | mixed
    unpaired_labels: list[Path] = field(default_factory=list)    # label without a video
    unpaired_videos: list[Path] = field(default_factory=list)    # video without a label
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (file, one-line reason)
    duplicates: list[Path] = field(default_factory=list)         # second file with a stem already seen
    files: dict[str, Path] = field(default_factory=dict)         # manifest name -> path

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def caption_from_label(data: Any) -> str | list[str] | None:
    """The caption in a parsed label file, trying CAPTION_PATHS in order; None if none fits."""
    for path in CAPTION_PATHS:
        node = data
        for step in path:
            if isinstance(step, int):
                node = node[step] if isinstance(node, list) and len(node) > step else None
            else:
                node = node.get(step) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, str) and node.strip():
            return node.strip()
        if isinstance(node, list):
            refs = [s.strip() for s in node if isinstance(s, str) and s.strip()]
            if refs:
                return refs[0] if len(refs) == 1 else refs
    return None


def split_from_path(path: Path, root: Path) -> str | None:
    """The split a file's folders name (Training/Validation/Test or TL_/VL_ prefixes), if any."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        parts = path.parts[:-1]
    for part in parts:
        word = part.lower()
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
        m = _SPLIT_PREFIX.match(part)
        if m:
            return "train" if m.group(1).lower().startswith("t") else "val"
    return None


def _read_label(path: Path) -> tuple[Any | None, str | None]:
    """(parsed JSON, None) or (None, reason)."""
    raw = path.read_bytes()
    text = None
    for encoding in ("utf-8-sig", "cp949"):  # AI-Hub files are UTF-8, some older ones CP949
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        return None, "not UTF-8 or CP949 text"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def _files(root: Path, sub: str, suffixes) -> list[Path]:
    base = root / sub if (root / sub).is_dir() else root
    return sorted(
        p for p in base.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def import_aihub(src: str | Path, out: str | Path, *, val_fraction: float = 0.1, seed: int = 42) -> ImportReport:
    """Pair labels with videos under `src` and write manifests into `out` (see the module doc)."""
    root = Path(src)
    if not root.is_dir():
        raise AIHubImportError(f"{root}: not a directory")
    out_dir = Path(out)
    report = ImportReport(out=out_dir)

    videos: dict[str, Path] = {}
    for video in _files(root, "videos", VIDEO_EXTENSIONS):
        if video.stem in videos:
            report.duplicates.append(video)
            continue
        videos[video.stem] = video
    labels: dict[str, Path] = {}
    for label in _files(root, "labels", (".json",)):
        if label.stem in labels:
            report.duplicates.append(label)
            continue
        labels[label.stem] = label
    if not labels and not videos:
        raise AIHubImportError(f"{root}: no label .json files and no videos found")

    pairs: list[tuple[str, Path, Path, str | list[str]]] = []
    for stem, label in labels.items():
        video = videos.get(stem)
        if video is None:
            report.unpaired_labels.append(label)
            continue
        data, reason = _read_label(label)
        if data is None:
            report.unreadable.append((label, reason or "unreadable"))
            continue
        caption = caption_from_label(data)
        if caption is None:
            tried = ", ".join(".".join(str(s) for s in p) for p in CAPTION_PATHS[:4])
            report.unreadable.append((label, f"no caption (tried {tried}, ...)"))
            continue
        if video.stat().st_size == 0:
            report.unreadable.append((video, "empty video file"))
            continue
        pairs.append((stem, label, video, caption))
    report.unpaired_videos = [v for stem, v in videos.items() if stem not in labels]

    # The dataset's own split where its folders say so; a seeded split for the rest.
    splits: dict[str, str | None] = {
        stem: split_from_path(label, root) or split_from_path(video, root) for stem, label, video, _ in pairs
    }
    undecided = sorted(stem for stem, split in splits.items() if split is None)
    if undecided:
        rng = random.Random(seed)
        shuffled = undecided[:]
        rng.shuffle(shuffled)
        n_val = round(len(shuffled) * val_fraction)
        if val_fraction > 0 and len(shuffled) > 1:
            n_val = max(1, min(n_val, len(shuffled) - 1))  # keep at least one clip on each side
        for i, stem in enumerate(shuffled):
            splits[stem] = "val" if i < n_val else "train"
        report.split_source = "seeded" if len(undecided) == len(pairs) else "mixed"

    items = [
        ManifestItem(id=stem, video=video.resolve(), caption=caption, split=splits[stem] or "train")
        for stem, _, video, caption in sorted(pairs, key=lambda p: p[0])
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir / "manifest.jsonl", items)
    report.files["manifest"] = out_dir / "manifest.jsonl"
    for split in ("train", "val", "test"):
        chosen = [it for it in items if it.split == split]
        report.counts[split] = len(chosen)
        if chosen or split != "test":
            write_manifest(out_dir / f"{split}.jsonl", chosen)
            report.files[split] = out_dir / f"{split}.jsonl"
    return report
