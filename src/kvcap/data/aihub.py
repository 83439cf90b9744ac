"""Import an AI-Hub video-caption dataset ("대한민국 배경영상 상세묘사" and its kind) as manifests.

Understood layouts (label and video share a file stem; folders or zip parts, mixed freely):

    SRC/labels/**/<stem>.json + SRC/videos/**/<stem>.mp4          flat
    SRC/1.Training/라벨링데이터/TL_*/<stem>.json                    AI-Hub, as downloaded:
    SRC/1.Training/원천데이터/TS_*/<stem>.mp4                       TL_/TS_ (train), VL_/VS_ (val),
    SRC/2.Validation/...  and TS_01.zip, TL_01.zip, ...             unpacked or still zipped

Labels are found under `SRC/labels` when that folder exists, else anywhere under SRC; videos
likewise under `SRC/videos`; `.zip` files under them are read in place (aihub_sources). A video
in a zip is named `ARCHIVE.zip::MEMBER` in the manifest (kvcap.video.source); DEFLATED ones are
unpacked once with `unpack_to`. Where a clip exists both unpacked and zipped, the unpacked file
is used.

The caption is `annotation.description_kr`. An empty or missing one is a skip with its reason,
never a fallback to another field, unless the caller names the fields (`caption_fields`, tried
in order; `annotations.0.description_kr` indexes a list).

Split: the dataset's own where its folders say so (Training/Validation/Test, `1.Training`,
TL_/TS_, VL_/VS_), else by a hash of the clip's stem salted by `seed` (kvcap.data.split):
adding or removing clips never moves another one (`val_fraction`), or at most one
(`val_count`, the N lowest hashes: an exact count).

Written: `OUT/train.jsonl`, `OUT/val.jsonl` (+ `OUT/test.jsonl` for a test split),
`OUT/manifest.jsonl` (every line with its split) and `OUT/skipped.jsonl` (every file not
imported, with its reason). Nothing but an unusable tree is fatal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kvcap.data.manifest import ManifestItem, write_manifest
from kvcap.errors import KvcapError
from kvcap.video.ziparchive import DAMAGED_MEMBER_ERRORS

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

# CAPTION_PATHS serves hints only: a skipped label with text at one of those places says so, and
# the user may name it with --caption-field. It is never a silent fallback.
DEFAULT_CAPTION_FIELD = "annotation.description_kr"
LAYOUTS = (
    "understood layouts: SRC/labels/**/<stem>.json + SRC/videos/**/<stem>.mp4, or AI-Hub's "
    "SRC/1.Training|2.Validation/라벨링데이터|원천데이터/TL_*|TS_*|VL_*|VS_* (folders or .zip parts); "
    f"caption at {DEFAULT_CAPTION_FIELD} (or --caption-field)"
)

# Path components that name a split (lower-cased, a leading "1." dropped), and AI-Hub's prefixes.
_SPLIT_WORDS = {
    "training": "train", "train": "train",
    "validation": "val", "valid": "val", "val": "val",
    "test": "test", "testing": "test",
}
_SPLIT_PREFIX = re.compile(r"^(t[ls]|v[ls])_", re.IGNORECASE)
_NUMBERED = re.compile(r"^\d+[._\-\s]*")


class AIHubImportError(KvcapError, ValueError):
    """The source cannot be imported at all (one line, names the path)."""


@dataclass
class ImportReport:
    """What `import_aihub` did and what it could not use."""

    out: Path
    counts: dict[str, int] = field(default_factory=dict)        # split -> clips written
    split_source: str = "dataset"                                # dataset | hashed | mixed
    unpaired_labels: list[Path] = field(default_factory=list)    # label without a video
    unpaired_videos: list[Path] = field(default_factory=list)    # video without a label
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (file, one-line reason): bad JSON, no caption
    duplicates: list[tuple[Path, str]] = field(default_factory=list)  # (file, which one was kept)
    bad_zips: list[tuple[Path, str]] = field(default_factory=list)    # archives that cannot be read
    files: dict[str, Path] = field(default_factory=dict)         # manifest name -> path
    zips: int = 0                                                # zip archives read
    zipped_videos: int = 0                                       # imported clips read in place from a zip
    deflated_in_place: list[Path] = field(default_factory=list)  # compressed members imported without --unpack-to
    unpacked: int = 0                                            # members unpacked into unpack_dir
    unpack_dir: Path | None = None
    caption_fields: tuple[str, ...] = (DEFAULT_CAPTION_FIELD,)
    stats: Any = None                                            # kvcap.data.caption_stats.CaptionStats
    notes: list[str] = field(default_factory=list)               # one-line remarks for the summary

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def skipped(self) -> list[tuple[str, Path, str]]:
        """Every file not imported: (kind, file, reason)."""
        out: list[tuple[str, Path, str]] = []
        out += [("unreadable", p, r) for p, r in self.unreadable]
        out += [("no video", p, "label without a video of the same stem") for p in self.unpaired_labels]
        out += [("no label", p, "video without a label of the same stem") for p in self.unpaired_videos]
        out += [("duplicate", p, r) for p, r in self.duplicates]
        out += [("bad zip", p, r) for p, r in self.bad_zips]
        return out


def parse_field(spec: str) -> tuple[Any, ...]:
    """`annotations.0.description_kr` -> ("annotations", 0, "description_kr")."""
    steps = [s for s in spec.strip().split(".")]
    if not spec.strip() or any(not s for s in steps):
        raise AIHubImportError(f"--caption-field {spec!r}: expected dotted keys such as {DEFAULT_CAPTION_FIELD}")
    return tuple(int(s) if s.isdigit() else s for s in steps)


def _lookup(data: Any, path: tuple[Any, ...]) -> tuple[bool, Any]:
    node = data
    for step in path:
        if isinstance(step, int) and isinstance(node, list) and len(node) > step:
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return False, None
    return True, node


def _text(node: Any) -> str | list[str] | None:
    if isinstance(node, str) and node.strip():
        return node.strip()
    if isinstance(node, list):
        refs = [s.strip() for s in node if isinstance(s, str) and s.strip()]
        if refs:
            return refs[0] if len(refs) == 1 else refs
    return None


def label_caption(data: Any, fields: tuple[str, ...] = (DEFAULT_CAPTION_FIELD,)) -> tuple[str | list[str] | None, str]:
    """(caption, "") from the first of `fields` holding text, else (None, why not).

    The reason names each field and what it held (missing, empty, not text) and, when the
    label has text at another well-known place, the `--caption-field` that would use it.
    """
    problems = []
    for spec in fields:
        found, node = _lookup(data, parse_field(spec))
        caption = _text(node) if found else None
        if caption is not None:
            return caption, ""
        if not found:
            problems.append(f"no {spec}")
        elif node is None or isinstance(node, str) or (isinstance(node, list) and all(isinstance(s, str) for s in node)):
            problems.append(f"{spec} is empty")
        else:
            problems.append(f"{spec} is a {type(node).__name__}, not text")
    reason = "; ".join(problems)
    for path in CAPTION_PATHS:
        name = ".".join(str(s) for s in path)
        if name in fields:
            continue
        found, node = _lookup(data, path)
        if found and _text(node) is not None:
            reason += f" (text at {name}: pass --caption-field {name} to use it)"
            break
    return None, reason


def caption_from_label(data: Any, fields: tuple[str, ...] = (DEFAULT_CAPTION_FIELD,)) -> str | list[str] | None:
    """The caption of a parsed label file at `fields` (tried in order); None if none holds text."""
    return label_caption(data, fields)[0]


def split_from_parts(parts: tuple[str, ...]) -> str | None:
    """The split folders name: Training/Validation/Test (`1.Training` too) or TL_/VL_ prefixes."""
    for part in parts:
        word = _NUMBERED.sub("", part).lower()
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
        m = _SPLIT_PREFIX.match(part)
        if m:
            return "train" if m.group(1).lower().startswith("t") else "val"
    return None


def split_from_path(path: Path, root: Path) -> str | None:
    """The split a file's folders name (Training/Validation/Test or TL_/VL_ prefixes), if any."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        parts = path.parts[:-1]
    return split_from_parts(parts)


def parse_label(raw: bytes) -> tuple[Any | None, str | None]:
    """(parsed JSON, None) or (None, reason)."""
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


def _by_stem(entries, duplicates: list[tuple[Path, str]]) -> dict:
    """{stem: entry}; an unpacked file wins over a zipped copy, else the first in path order."""
    chosen: dict = {}
    for entry in sorted(entries, key=lambda e: (e.zipped, str(e.ref))):
        kept = chosen.get(entry.stem)
        if kept is None:
            chosen[entry.stem] = entry
        elif entry.zipped and not kept.zipped:
            duplicates.append((entry.ref, f"already unpacked at {kept.ref} (used that)"))
        else:
            duplicates.append((entry.ref, f"stem {entry.stem!r} also at {kept.ref} (kept that)"))
    return chosen


def _absolute(ref: Path) -> Path:
    from kvcap.video.source import ZipMember, parse_source, zip_member_ref

    source = parse_source(ref)
    if isinstance(source, ZipMember):
        return zip_member_ref(source.archive.resolve(), source.member)
    return source.resolve()


def import_aihub(
    src: str | Path, out: str | Path, *, val_fraction: float = 0.1, seed: int = 42,
    val_count: int | None = None, caption_fields: tuple[str, ...] | list[str] | None = None,
    unpack_to: str | Path | None = None, unpack_progress: Callable[[int], Any] | None = None,
    llm: str | None = None, max_caption_tokens: int | None = None,
) -> ImportReport:
    """Pair labels with videos under `src` and write manifests into `out` (see the module doc).

    `unpack_progress(total_bytes)` returns a bar (`.update(bytes)`, `.close()`: a tqdm) for the
    unpacking of DEFLATED videos into `unpack_to`. `llm` names the model
    whose tokenizer counts caption tokens in `report.stats` (characters only when it cannot be
    loaded offline); `max_caption_tokens` is the training limit the stats count cuts against.
    """
    from kvcap.data.aihub_sources import scan
    from kvcap.data.caption_stats import caption_stats, load_tokenizer_offline

    root = Path(src)
    if not root.is_dir():
        raise AIHubImportError(f"{root}: not a directory")
    fields = tuple(caption_fields) if caption_fields else (DEFAULT_CAPTION_FIELD,)
    for spec in fields:
        parse_field(spec)
    out_dir = Path(out)
    report = ImportReport(out=out_dir, caption_fields=fields)

    found = scan(root)
    report.zips, report.bad_zips = len(found.zips), list(found.bad_zips)
    videos = _by_stem(found.videos, report.duplicates)
    labels = _by_stem(found.labels, report.duplicates)
    if not labels and not videos:
        raise AIHubImportError(f"{root}: no label .json files and no videos found; {LAYOUTS}")

    pairs = _pair_labels(labels, videos, fields, report)
    report.unpaired_videos = [v.ref for stem, v in sorted(videos.items()) if stem not in labels]
    if not pairs:
        raise AIHubImportError(
            f"{root}: no label file yields a caption ({len(labels)} labels, {len(videos)} videos, "
            f"{len(report.unreadable)} without a usable caption); {LAYOUTS}"
        )

    pairs, paths = _place_videos(pairs, report, unpack_to, unpack_progress)
    splits = _choose_splits(root, pairs, report, seed=seed, val_fraction=val_fraction, val_count=val_count)
    items = [
        ManifestItem(id=stem, video=_absolute(paths[stem]), caption=caption, split=splits[stem] or "train")
        for stem, _, _, caption in pairs
    ]
    _write_manifests(out_dir, items, report)
    references = [ref for it in items for ref in it.references]
    tokenizer, note = load_tokenizer_offline(llm) if llm else (None, "no model.llm given")
    report.stats = caption_stats(references, tokenizer, model_id=llm, max_caption_tokens=max_caption_tokens, note=note)
    return report


def _pair_labels(labels: dict, videos: dict, fields: tuple[str, ...], report: ImportReport) -> list:
    """(stem, label entry, video entry, caption) for each label with a video and a usable
    caption; the others are noted in `report`."""
    from kvcap.data.aihub_sources import ZipReader

    reader = ZipReader()
    pairs = []  # (stem, label entry, video entry, caption)
    try:
        for stem, label in sorted(labels.items()):
            video = videos.get(stem)
            if video is None:
                report.unpaired_labels.append(label.ref)
                continue
            try:
                data, reason = parse_label(reader.read(label))
            except (OSError, KeyError, ValueError, *DAMAGED_MEMBER_ERRORS, EOFError) as exc:
                data, reason = None, f"cannot read ({exc})"
            if data is None:
                report.unreadable.append((label.ref, reason or "unreadable"))
                continue
            caption, why = label_caption(data, fields)
            if caption is None:
                report.unreadable.append((label.ref, f"no caption: {why}"))
                continue
            if video.size == 0:
                report.unreadable.append((video.ref, "empty video file"))
                continue
            pairs.append((stem, label, video, caption))
    finally:
        reader.close()
    return pairs


def _place_videos(pairs: list, report: ImportReport, unpack_to, unpack_progress) -> tuple[list, dict]:
    """Where each pair's video is read from: (pairs left, stem -> path or zip member ref).
    Unpacked files and STORED zip members in place; DEFLATED members unpacked once when
    `unpack_to` is given (the ones that fail are dropped and noted)."""
    from kvcap.data.aihub_sources import unpack

    paths = {stem: video.ref for stem, _, video, _ in pairs}
    deflated = [video for _, _, video, _ in pairs if video.zipped and video.deflated]
    if deflated and unpack_to is not None:
        report.unpack_dir = Path(unpack_to)
        bar = unpack_progress(sum(v.size for v in deflated)) if unpack_progress else None
        try:
            done, failed = unpack(deflated, report.unpack_dir, bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        report.unpacked = len(done)
        report.unreadable += failed
        bad = {ref for ref, _ in failed}
        pairs = [pair for pair in pairs if pair[2].ref not in bad]
        for stem, _, video, _ in pairs:
            paths[stem] = done.get(video.ref, paths[stem])
    elif deflated:
        report.deflated_in_place = [v.ref for v in deflated]
    report.zipped_videos = sum(1 for stem, _, video, _ in pairs if video.zipped and paths[stem] == video.ref)
    return pairs, paths


def _choose_splits(root: Path, pairs: list, report: ImportReport, *, seed: int, val_fraction: float,
                   val_count: int | None) -> dict[str, str | None]:
    """stem -> split: the dataset's own where its folders say so, a hash of the stem for the rest."""
    from kvcap.data.split import SplitError, assign_splits

    splits: dict[str, str | None] = {
        stem: split_from_parts(label.where) or split_from_parts(video.where) for stem, label, video, _ in pairs
    }
    undecided = [stem for stem, split in splits.items() if split is None]
    if undecided:
        try:
            splits.update(assign_splits(undecided, seed=seed, val_fraction=val_fraction, val_count=val_count))
        except SplitError as exc:
            raise AIHubImportError(f"{root}: {exc}") from None
        report.split_source = "hashed" if len(undecided) == len(pairs) else "mixed"
    elif val_count is not None:
        report.notes.append(f"--val-count {val_count} not used: every clip has the dataset's own split")
    return splits


def _write_manifests(out_dir: Path, items: list[ManifestItem], report: ImportReport) -> None:
    """manifest.jsonl, one file per split (test only when it has clips) and skipped.jsonl."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir / "manifest.jsonl", items)
    report.files["manifest"] = out_dir / "manifest.jsonl"
    for split in ("train", "val", "test"):
        chosen = [it for it in items if it.split == split]
        report.counts[split] = len(chosen)
        if chosen or split != "test":
            write_manifest(out_dir / f"{split}.jsonl", chosen)
            report.files[split] = out_dir / f"{split}.jsonl"
    _write_skipped(out_dir / "skipped.jsonl", report)
    report.files["skipped"] = out_dir / "skipped.jsonl"


def _write_skipped(path: Path, report: ImportReport) -> None:
    from kvcap.fsutil import atomic_write_text

    lines = [json.dumps({"kind": kind, "file": str(file), "reason": reason}, ensure_ascii=False)
             for kind, file, reason in report.skipped]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
