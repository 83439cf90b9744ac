"""Reading predictions and references for `kvcap score`, and matching them.

Predictions: a `captions.jsonl` from `kvcap caption` (records with `video`, `status`,
`caption`; `status: error` records are skipped and counted), or any JSONL whose records carry
`id` or `video` plus `caption`.

References: a manifest JSONL (`{"id", "video", "caption", "split"}`), `caption` a string or a
list of strings; `video` relative to the manifest's folder.

Matching rule (first that applies, per prediction):

1. the prediction's `id` (or its `video` value) equals a manifest `id`;
2. its `video` equals a manifest `video` as written (both normalised to forward slashes,
   leading `./` dropped), or the same file once both are resolved to absolute paths;
3. its `video` path is a suffix of exactly one manifest `video` path, or vice versa, compared
   by whole path components (`val/x.mp4` matches `clips/val/x.mp4`);
4. its basename equals the basename of exactly one manifest `video`.

An ambiguous prediction (several clips fit) is not guessed: it stays unmatched under its own
key, and the score report counts it with the other predictions that have no reference.

Every reading error is one line naming the file and, where there is one, the line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kvcap.errors import KvcapError
from kvcap.records.jsonl import iter_jsonl


class ScoreInputError(KvcapError, ValueError):
    """A predictions or references file kvcap cannot use (one line, names file and line)."""


@dataclass
class Predictions:
    """Captions keyed by the record's `id`, else its `video`; `video` kept for matching."""

    path: Path
    captions: dict[str, str] = field(default_factory=dict)
    videos: dict[str, str] = field(default_factory=dict)   # key -> `video` as written
    errors: int = 0                                         # `status: error` records skipped
    duplicates: int = 0                                     # later records with a key seen before
    suspect: dict[str, str] = field(default_factory=dict)   # key -> the record's `suspect` reason (kvcap caption)


@dataclass
class References:
    """Reference captions and videos per manifest id."""

    path: Path
    captions: dict[str, list[str]] = field(default_factory=dict)
    videos: dict[str, Path] = field(default_factory=dict)    # id -> absolute video path
    rel_videos: dict[str, str] = field(default_factory=dict)  # id -> `video` as written


def _records(path: Path, what: str):
    """Yield (line number, dict) for each non-blank line; one-line errors for everything else."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScoreInputError(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise ScoreInputError(f"{path}: cannot read {what} file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScoreInputError(f"{path}: {what} file is not UTF-8 text") from None
    found = False
    for number, record in iter_jsonl(text):
        if isinstance(record, json.JSONDecodeError):
            raise ScoreInputError(f"{path}:{number}: not valid JSON ({record.msg})") from None
        if not isinstance(record, dict):
            raise ScoreInputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        found = True
        yield number, record
    if not found:
        raise ScoreInputError(f"{path}: {what} file is empty")


def _norm(video: str) -> str:
    text = str(video).replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def load_predictions(path: str | Path) -> Predictions:
    """Read predictions (see the module docstring); raises :class:`ScoreInputError`."""
    path = Path(path)
    preds = Predictions(path)
    for number, record in _records(path, "predictions"):
        if record.get("status") == "error":
            preds.errors += 1
            continue
        key = record.get("id", record.get("video"))
        if key is None or key == "":
            raise ScoreInputError(f"{path}:{number}: record has neither 'id' nor 'video'")
        if "caption" not in record:
            raise ScoreInputError(f"{path}:{number}: record has no 'caption'")
        caption = record["caption"]
        if not isinstance(caption, str):
            raise ScoreInputError(f"{path}:{number}: 'caption' must be a string, got {type(caption).__name__}")
        key = str(key)
        if key in preds.captions:
            preds.duplicates += 1  # a rerun appended it again: the latest wins
        preds.captions[key] = caption
        preds.suspect.pop(key, None)
        if isinstance(record.get("suspect"), str) and record["suspect"]:
            preds.suspect[key] = record["suspect"]
        if record.get("video") is not None:
            preds.videos[key] = _norm(record["video"])
    if not preds.captions and preds.errors:
        raise ScoreInputError(f"{path}: no usable predictions (all {preds.errors} records have status 'error')")
    return preds


def load_references(manifest: str | Path) -> References:
    """Read a manifest's captions per id (see the module docstring); raises :class:`ScoreInputError`."""
    manifest = Path(manifest)
    refs = References(manifest)
    root = manifest.resolve().parent
    for number, record in _records(manifest, "references"):
        if "id" not in record and "video" not in record:
            raise ScoreInputError(f"{manifest}:{number}: record has neither 'id' nor 'video'")
        if "caption" not in record:
            raise ScoreInputError(f"{manifest}:{number}: record has no 'caption'")
        caption = record["caption"]
        captions = [caption] if isinstance(caption, str) else caption
        if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
            raise ScoreInputError(f"{manifest}:{number}: 'caption' must be a string or a non-empty list of strings")
        key = str(record.get("id", record.get("video")))
        if key in refs.captions:
            raise ScoreInputError(f"{manifest}:{number}: duplicate id {key!r}")
        refs.captions[key] = captions
        if record.get("video"):
            rel = _norm(record["video"])
            refs.rel_videos[key] = rel
            video = Path(rel)
            refs.videos[key] = video if video.is_absolute() else root / video
    return refs


def match_predictions(preds: Predictions, refs: References) -> dict[str, str]:
    """Predictions re-keyed by manifest id where the matching rule finds one.

    Unmatched predictions keep their own key (the score report lists them as having no
    reference); if two predictions land on one id, the one matched by id wins.
    """
    return {target: preds.captions[key] for key, target in match_keys(preds, refs).items()}


def match_keys(preds: Predictions, refs: References) -> dict[str, str]:
    """{prediction key: the manifest id it matches, or its own key} (the rule of the module
    docstring; `kvcap review` uses it to put each video's reference beside it)."""
    by_rel = {rel: rid for rid, rel in refs.rel_videos.items()}
    by_abs = {str(path.resolve()): rid for rid, path in refs.videos.items()}
    by_base: dict[str, list[str]] = {}
    for rid, rel in refs.rel_videos.items():
        by_base.setdefault(PurePosixPath(rel).name, []).append(rid)
    ref_parts = {rid: PurePosixPath(rel).parts for rid, rel in refs.rel_videos.items()}

    def find(key: str) -> str | None:
        if key in refs.captions:
            return key
        video = preds.videos.get(key)
        if video is None:
            return None
        if video in by_rel:
            return by_rel[video]
        absolute = Path(video) if Path(video).is_absolute() else preds.path.resolve().parent / video
        if str(absolute.resolve()) in by_abs:
            return by_abs[str(absolute.resolve())]
        parts = PurePosixPath(video).parts
        suffix = [rid for rid, rp in ref_parts.items()
                  if rp[-len(parts):] == parts or parts[-len(rp):] == rp]
        if len(suffix) == 1:
            return suffix[0]
        if suffix:
            return None  # ambiguous: don't guess
        base = by_base.get(PurePosixPath(video).name, [])
        return base[0] if len(base) == 1 else None

    targets: dict[str, str] = {}  # prediction key -> id
    taken: set[str] = set()
    by_id_first = sorted(preds.captions, key=lambda k: k not in refs.captions)
    for key in by_id_first:
        rid = find(key)
        target = rid if rid is not None and rid not in taken else key
        taken.add(target)
        targets[key] = target
    return targets
