"""What `kvcap caption` puts on stdout as each video is written.

- On a terminal: each video's cues, whisper style (`[00:01.000 --> 00:04.200]  text`) under a
  line naming the video; `--quiet` turns it off.
- With `-o -`: the captions.jsonl records themselves, one JSON line per video, so the output
  pipes into `jq` or another program (progress and the summary go to stderr).

`write` is given by the caller so that lines go through the progress bar's writer (tqdm clears
the bar, writes the line, redraws the bar: each caption appears once on the terminal).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from kvcap.caption.writers import to_milliseconds


def clock(seconds: float) -> str:
    """`MM:SS.mmm`, with `HH:` in front from one hour on (whisper's console format)."""
    ms = to_milliseconds(max(0.0, float(seconds)))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    head = f"{hours:02d}:" if hours else ""
    return f"{head}{minutes:02d}:{secs:02d}.{millis:03d}"


def cue_lines(result: Any) -> list[str]:
    """The lines shown for one captioned video: its key, then one line per cue."""
    lines = [str(result.video)]
    for segment in result.segments:
        lines.append(f"[{clock(segment['start'])} --> {clock(segment['end'])}]  {segment['text']}")
    return lines


def record_line(result: Any) -> str:
    """The video's captions.jsonl record as one JSON line (UTF-8 text kept as is)."""
    return json.dumps(result.record(), ensure_ascii=False)


class StdoutEcho:
    """Called once per finished video (not for ones skipped as already done)."""

    def __init__(self, mode: str):
        if mode not in ("cues", "jsonl"):
            raise ValueError(f"echo mode must be cues or jsonl, got {mode!r}")
        self.mode = mode

    def __call__(self, result: Any, write: Callable[[str], None]) -> None:
        if result.skipped:
            return
        if self.mode == "jsonl":
            write(record_line(result))
        elif result.ok:
            for line in cue_lines(result):
                write(line)
