"""Output writers: subtitles (SRT, WebVTT), whisper's txt and tsv, and the `captions.jsonl` log.

Which formats exist, and which function here writes each, is the format table
(kvcap.records.formats, keyed by the name users type in `--format`, as whisper's writers are
keyed by extension); `write_subtitles(path, segments, fmt)` writes any of them.

Subtitles are built from one list of `Segment(start, end, text)` through one cue iterator
(`cues`), so SRT and VTT always agree on timing and text (the shape of whisper's
`utils.py`). Times are rounded half-up to the millisecond from their decimal value (1.0005 s
-> 00:00:01.001, never truncated to .000). Each file is written to a temp file beside the
target and renamed over it, so a player or a killed job never sees half a file.

SRT text goes through the maintained `srt` library (`srt.compose`). WebVTT is written here:
the format is a header plus `start --> end` blocks, and the one library for it (webvtt-py) is
only a test dependency (it reads the files back in the tests).

`CaptionsJsonl` appends one whole JSON line per video and flushes it, and reads back the
videos already `ok` so a rerun can skip them.
"""

from __future__ import annotations

import datetime
import importlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator

from kvcap.fsutil import append_jsonl, atomic_write_text, repair_jsonl_tail
from kvcap.records import CaptionRecord, latest_per_video, read_jsonl


@dataclass(frozen=True)
class Segment:
    """A span of a video in seconds and the caption for it."""

    start: float
    end: float
    text: str


def to_milliseconds(seconds: float) -> int:
    """Seconds -> whole milliseconds, rounded half-up from the number's decimal repr.

    `Decimal(str(x))` is the shortest decimal that round-trips the float, so 1.0005 rounds to
    1001 ms as a person reading the number expects (binary 1.0005 is 1.000499999...).
    """
    return int((Decimal(str(seconds)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_timestamp(milliseconds: int, *, decimal_marker: str = ",") -> str:
    """`HH:MM:SS,mmm` (SRT) or with `.` (WebVTT); hours keep growing past 99."""
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_marker}{millis:03d}"


@dataclass(frozen=True)
class Cue:
    """A segment ready for a subtitle file: integer milliseconds and cleaned text lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


def cues(segments: Iterable[Segment]) -> Iterator[Cue]:
    """Validate, round and clean segments into cues, in start order.

    Text lines are stripped and blank lines dropped (a blank line ends a cue in both formats),
    and "-->" in text becomes "->";
    a segment with no text left is skipped (players would show nothing). A cue shorter than a
    millisecond after rounding is stretched to 1 ms so it is not dropped as empty. Raises
    ValueError for a negative start, an end before the start, or a non-finite time.
    """
    prepared: list[Cue] = []
    for number, segment in enumerate(segments, start=1):
        start, end = float(segment.start), float(segment.end)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"segment {number}: times must be finite, got {start}..{end}")
        if start < 0:
            raise ValueError(f"segment {number}: start {start} s is negative")
        if end < start:
            raise ValueError(f"segment {number}: end {end} s is before start {start} s")
        # "-->" inside text could be read as a timing line by lenient parsers.
        lines = tuple(line.strip().replace("-->", "->") for line in str(segment.text).splitlines() if line.strip())
        if not lines:
            continue
        start_ms, end_ms = to_milliseconds(start), to_milliseconds(end)
        prepared.append(Cue(start_ms, max(end_ms, start_ms + 1), lines))
    prepared.sort(key=lambda cue: (cue.start_ms, cue.end_ms))
    yield from prepared


def srt_text(segments: Iterable[Segment]) -> str:
    """The SRT document for `segments` (composed by the `srt` library)."""
    import srt

    subtitles = [
        srt.Subtitle(
            index=None,
            start=datetime.timedelta(milliseconds=cue.start_ms),
            end=datetime.timedelta(milliseconds=cue.end_ms),
            content="\n".join(cue.lines),
        )
        for cue in cues(segments)
    ]
    return srt.compose(subtitles, reindex=True, start_index=1)


def _escape_vtt(line: str) -> str:
    # Cue text is HTML-like: & and < start entities and tags; "-->" would end the timing line.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_text(segments: Iterable[Segment]) -> str:
    """The WebVTT document for `segments`."""
    blocks = ["WEBVTT\n"]
    for cue in cues(segments):
        timing = f"{format_timestamp(cue.start_ms, decimal_marker='.')} --> {format_timestamp(cue.end_ms, decimal_marker='.')}"
        blocks.append(timing + "\n" + "\n".join(_escape_vtt(line) for line in cue.lines) + "\n")
    return "\n".join(blocks)


def txt_text(segments: Iterable[Segment]) -> str:
    """Plain text, one line per segment (its lines joined by spaces), as whisper's `.txt`."""
    return "".join(" ".join(cue.lines) + "\n" for cue in cues(segments))


def tsv_text(segments: Iterable[Segment]) -> str:
    """whisper's `.tsv`: a `start<TAB>end<TAB>text` header, then one row per cue with start and
    end in integer milliseconds; tabs in text become spaces."""
    rows = ["start\tend\ttext\n"]
    rows += [f"{cue.start_ms}\t{cue.end_ms}\t{' '.join(cue.lines).replace(chr(9), ' ')}\n" for cue in cues(segments)]
    return "".join(rows)


def document_text(fmt: str, segments: Iterable[Segment]) -> str:
    """The `fmt` document for `segments`, by the writer the format table names
    (kvcap.records.formats: `"srt"` -> `srt_text`)."""
    from kvcap.records.formats import FORMATS

    writer = FORMATS[fmt].writer
    if writer is None:
        raise ValueError(f"format {fmt!r} is not a per-video file")
    if isinstance(writer, str):
        module, _, name = writer.partition(":")
        writer = getattr(importlib.import_module(module), name)
    return writer(segments)


def write_subtitles(path: str | Path, segments: Iterable[Segment], fmt: str) -> Path:
    """Write the `fmt` document for `segments` atomically (temp file + rename); returns the path."""
    path = Path(path)
    atomic_write_text(path, document_text(fmt, segments))
    return path


# --------------------------------------------------------------------------------------------
# captions.jsonl


# CaptionRecord (one line of captions.jsonl) is defined in kvcap.records.caption.


class CaptionsJsonl:
    """Append-only `captions.jsonl`: one whole line per video, flushed as written.

        with CaptionsJsonl(out / files.CAPTIONS) as log:
            if record.video not in log.done: ...
            log.append(record)

    Opening repairs a torn last line left by a killed writer, so appends start on a fresh line
    and no record is ever glued to half of another.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle = None
        self.latest: dict[str, dict[str, Any]] = {}
        """Video -> the last record written for it (read by `open`, kept up to date by `append`)."""
        self.done: dict[str, dict[str, Any]] = {}
        """Video -> its latest record, for videos whose latest record is `ok`."""

    def read_latest(self) -> dict[str, dict[str, Any]]:
        """Video -> the last record written for it (a rerun's record wins over older ones)."""
        return latest_per_video(read_jsonl(self.path)) if self.path.exists() else {}

    def open(self) -> "CaptionsJsonl":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_jsonl_tail(self.path)
        self.latest = self.read_latest()
        self.done = {v: r for v, r in self.latest.items() if r.get("status") == "ok"}
        self._handle = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, record: CaptionRecord | dict[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError(f"{self.path}: open() the log before appending")
        if not isinstance(record, CaptionRecord):
            CaptionRecord.check_keys(record, self.path)
            # Validate a plain dict the same way as a record (status, one-line error).
            record = CaptionRecord(**record)
        data = record.to_dict()
        append_jsonl(self._handle, data)
        self.latest.pop(data["video"], None)
        self.latest[data["video"]] = data
        if data["status"] == "ok":
            self.done[data["video"]] = data
        else:
            self.done.pop(data["video"], None)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "CaptionsJsonl":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

