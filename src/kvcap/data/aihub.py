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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kvcap.data.aihub_labels import (
    DEFAULT_CAPTION_FIELD,
    AIHubImportError,
    label_caption,
    parse_field,
    parse_label,
    split_from_parts,
)
from kvcap.data.manifest import ManifestItem, write_manifest
from kvcap.video.ziparchive import DAMAGED_MEMBER_ERRORS

LAYOUTS = (
    "understood layouts: SRC/labels/**/<stem>.json + SRC/videos/**/<stem>.mp4, or AI-Hub's "
    "SRC/1.Training|2.Validation/라벨링데이터|원천데이터/TL_*|TS_*|VL_*|VS_* (folders or .zip parts); "
    f"caption at {DEFAULT_CAPTION_FIELD} (or --caption-field)"
)

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
    tokenizer: Any | None = None, tokenizer_id: str | None = None, tokenizer_note: str = "no model.llm given",
    max_caption_tokens: int | None = None,
) -> ImportReport:
    """Pair labels with videos under `src` and write manifests into `out` (see the module doc).

    `unpack_progress(total_bytes)` returns a bar (`.update(bytes)`, `.close()`: a tqdm) for the
    unpacking of DEFLATED videos into `unpack_to`. `tokenizer` (model `tokenizer_id`'s, see
    kvcap.model.tokenizer) counts caption tokens in `report.stats`; without it they are in characters
    only and `tokenizer_note` says why. `max_caption_tokens` is the training limit the stats count cuts against.
    """
    from kvcap.data.aihub_sources import scan
    from kvcap.data.caption_stats import caption_stats

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
    report.stats = caption_stats(references, tokenizer, model_id=tokenizer_id, max_caption_tokens=max_caption_tokens,
                                 note=tokenizer_note)
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
