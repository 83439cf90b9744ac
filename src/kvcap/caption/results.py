"""What the pipeline hands out: one CaptionResult per video (its captions.jsonl line is
kvcap.records.CaptionRecord) and the job's timings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kvcap.records import CaptionRecord


@dataclass
class CaptionResult(CaptionRecord):
    """One video's outcome: its captions.jsonl record (the fields of kvcap.records.CaptionRecord,
    inherited, not copied), plus where the video is and whether an earlier run had done it."""

    path: Path | None = None
    skipped: bool = False  # already ok from an earlier run: not captioned again
    elapsed_s: float = 0.0

    def record(self) -> dict[str, Any]:
        """Its captions.jsonl line: the record's fields only, elapsed_s rounded to milliseconds."""
        values = {f.name: getattr(self, f.name) for f in fields(CaptionRecord)}
        return CaptionRecord(**{**values, "elapsed_s": round(self.elapsed_s or 0.0, 3)}).to_dict()

    to_dict = record  # what CaptionRecord.to_dict means: the line, without path or skipped

    @classmethod
    def from_record(cls, record: dict[str, Any], path: Path, skipped: bool = True) -> "CaptionResult":
        r = CaptionRecord.from_dict(record)
        values = {f.name: getattr(r, f.name) for f in fields(CaptionRecord)}
        return cls(**{**values, "elapsed_s": float(r.elapsed_s or 0.0)}, path=path, skipped=skipped)


@dataclass
class PipelineStats:
    """Where the time went (filled in by `caption_folder` when passed one)."""

    wall_s: float = 0.0
    model_s: float = 0.0  # encode + generate, main thread
    wait_s: float = 0.0  # main thread waiting for decoded frames (the decode-bound part)
    decode_s: float = 0.0  # summed over worker threads
    batches: int = 0
    items: int = 0  # clips or windows generated

