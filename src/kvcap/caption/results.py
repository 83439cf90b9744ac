"""What the pipeline hands out: one CaptionResult per video (its captions.jsonl line is
kvcap.records.CaptionRecord), the job's timings, and the one-line text normalisation."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CaptionResult:
    """One video's outcome; `record()` is its captions.jsonl line."""

    video: str  # key: posix path relative to its input root
    path: Path
    status: str  # "ok" | "error"
    caption: str | None = None  # None for an error
    segments: list[dict[str, Any]] = field(default_factory=list)  # [{start, end, text}]
    duration: float | None = None
    fps: float | None = None  # the clip's frame rate
    frame_times: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    elapsed_s: float = 0.0
    error: str | None = None
    skipped: bool = False  # already ok from an earlier run: not captioned again

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record(self) -> dict[str, Any]:
        """Its captions.jsonl line (kvcap.records.CaptionRecord)."""
        from kvcap.records import CaptionRecord

        return CaptionRecord(
            video=self.video, status=self.status, caption=self.caption, segments=self.segments,
            duration=self.duration, fps=self.fps, frame_times=self.frame_times, checkpoint=self.checkpoint,
            elapsed_s=round(self.elapsed_s, 3), error=self.error,
        ).to_dict()

    @classmethod
    def from_record(cls, record: dict[str, Any], path: Path, skipped: bool = True) -> "CaptionResult":
        from kvcap.records import CaptionRecord

        r = CaptionRecord.from_dict(record)
        return cls(
            video=r.video, path=path, status=r.status, caption=r.caption, segments=r.segments,
            duration=r.duration, fps=r.fps, frame_times=r.frame_times, checkpoint=r.checkpoint,
            elapsed_s=float(r.elapsed_s or 0.0), error=r.error, skipped=skipped,
        )


@dataclass
class PipelineStats:
    """Where the time went (filled in by `caption_folder` when passed one)."""

    wall_s: float = 0.0
    model_s: float = 0.0  # encode + generate, main thread
    wait_s: float = 0.0  # main thread waiting for decoded frames (the decode-bound part)
    decode_s: float = 0.0  # summed over worker threads
    batches: int = 0
    items: int = 0  # clips or windows generated


def clean_text(text: str) -> str:
    """One line of printable text: whitespace runs become one space and control characters
    (NUL, escapes, ... that an untrained or odd model can emit) are dropped, because subtitle
    players, ffmpeg and line-based JSONL readers all choke on them."""
    text = "".join(ch if unicodedata.category(ch) != "Cc" or ch in "\t\n\r" else " " for ch in str(text))
    return " ".join(text.split())
