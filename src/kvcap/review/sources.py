"""What the review page is built from: a caption job's records and the video file behind each.

Records hold no absolute path (`video` is the key relative to its input root), so the files are
found again the way the job listed them: `kvcap.caption.inputs.resolve_inputs` over job.json's
`inputs` (folders, several roots, `.zip` archives, `a.zip::b.mp4` members, manifests). A
sharded job has no job.json until it is merged: the `job.shard-i-of-n.json` files hold the same
inputs, and the records are read from `captions.jsonl` and every `captions.shard-*.jsonl` part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError
from kvcap.records import CaptionRecord, JobState, latest_per_video, read_json_object, read_jsonl

JSONL_NAME = "captions.jsonl"
JOB_NAME = "job.json"


class ReviewError(KvcapError, ValueError):
    """OUT is not a caption job kvcap can review (one line naming the folder or file)."""


@dataclass
class ReviewItem:
    """One video of the job: its record and the file to sample again (None, with `missing`
    saying why, when it cannot be found)."""

    record: CaptionRecord
    path: Path | None = None
    missing: str | None = None

    @property
    def key(self) -> str:
        return self.record.video


@dataclass
class ReviewJob:
    out: Path
    items: list[ReviewItem]
    inputs: list[str] = field(default_factory=list)
    checkpoint: str | None = None


def _job_files(out: Path) -> list[Path]:
    single = out / JOB_NAME
    return [single] if single.is_file() else sorted(out.glob("job.shard-*-of-*.json"))


def _read_job(path: Path) -> JobState:
    data = read_json_object(path)
    if data is None:
        raise ReviewError(f"{path}: cannot read the job file (unreadable, or not a JSON object)")
    return JobState.from_dict(data)


def _read_records(out: Path) -> dict[str, dict[str, Any]]:
    """{video key: its latest record} over captions.jsonl and the shard parts (a part's newer
    line wins, as `kvcap caption merge` decides)."""
    files = [p for p in [out / JSONL_NAME] if p.is_file()] + sorted(out.glob("captions.shard-*-of-*.jsonl"))
    if not files:
        raise ReviewError(f"{out}: no {JSONL_NAME} (nor shard parts) to review; run `kvcap caption ... -o {out}` first")
    lines: list[dict[str, Any]] = []
    for path in files:
        try:
            lines.extend(read_jsonl(path))
        except OSError as exc:
            raise ReviewError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return latest_per_video(lines)


def _absolute(raw: str, out: Path) -> str:
    """An input as the job recorded it; a relative one (older job files) is tried from the
    current folder, then from OUT's parent."""
    if os.path.isabs(raw) or os.path.lexists(raw.split("::", 1)[0]):
        return raw
    beside = out.resolve().parent / raw
    return str(beside) if os.path.lexists(str(beside).split("::", 1)[0]) else raw


def locate_videos(inputs: list[str], out: Path) -> tuple[dict[str, Path], str | None]:
    """({key: file}, None), or ({}, why) when the inputs cannot be listed any more."""
    from kvcap.caption.inputs import resolve_inputs

    present = [_absolute(raw, out) for raw in inputs]
    gone = [raw for raw in present if not os.path.lexists(raw.split("::", 1)[0])]
    found = [raw for raw in present if raw not in gone]
    try:
        videos = {v.key: v.path for v in resolve_inputs(found)} if found else {}
    except (KvcapError, OSError, ValueError) as exc:
        return {}, f"the job's inputs cannot be listed ({exc})"
    why = f"input {gone[0]} not found" if gone else None
    return videos, why


def load_job(out: str | Path) -> ReviewJob:
    """The records of the caption job in `out`, each with its video file (ReviewError when
    `out` is no caption output)."""
    out = Path(out)
    if not out.is_dir():
        what = "not a folder" if out.exists() else "no such folder"
        raise ReviewError(f"{out}: {what} (the output folder of `kvcap caption`)")
    if not os.access(out, os.R_OK | os.X_OK):
        raise ReviewError(f"{out}: permission denied")
    records = _read_records(out)
    jobs = [_read_job(path) for path in _job_files(out)]
    inputs = list(dict.fromkeys(raw for job in jobs for raw in job.inputs))
    videos, why = locate_videos(inputs, out)
    if not jobs:
        why = f"no {JOB_NAME} in {out} names the inputs"
    items = []
    for raw in records.values():
        try:
            record = CaptionRecord.from_dict(raw)
        except ValueError:
            continue  # not a caption record (the ledger's readers skip such lines too)
        path = videos.get(record.video)
        missing = None if path is not None else (why or f"{record.video} is no longer under the job's inputs")
        items.append(ReviewItem(record=record, path=path, missing=missing))
    items.sort(key=lambda item: item.key)
    checkpoint = next((job.checkpoint for job in jobs if job.checkpoint), None)
    return ReviewJob(out=out, items=items, inputs=inputs, checkpoint=checkpoint)
