"""The driver's side of the Ray stream: rows (one per captioned window, or one per failed video)
gathered back into the local engine's `Pending` videos, so the same sink writes them.

Rows arrive in completion order and, after a retried task, possibly twice: a (video, window)
already seen is dropped, and a video is handed on once, when all its windows are in (or one
failed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kvcap.caption.batching import Pending
from kvcap.caption.inputs import VideoInput


class Assembler:
    """Rows in, finished videos out (each exactly once)."""

    def __init__(self, videos: list[VideoInput]):
        self.videos = {v.key: v for v in videos}
        self.states: dict[str, Pending] = {}
        self.seen: set[tuple[str, int]] = set()
        self.finished: set[str] = set()
        self.unreadable: set[str] = set()  # videos whose error is a path or checkpoint a node cannot read
        self.workers: dict[str, dict[str, Any]] = {}  # worker id -> what it reported

    def _state(self, key: str) -> Pending:
        state = self.states.get(key)
        if state is None:
            video = self.videos.get(key) or VideoInput(path=Path(key), key=key)
            state = self.states[key] = Pending(video=video, count=0)
        return state

    def _note_worker(self, row: dict[str, Any]) -> None:
        info = row.get("worker_info")
        if info:
            data = json.loads(info)
            self.workers[data["worker"]] = data

    def add(self, row: dict[str, Any]) -> Pending | None:
        """Take one row; returns its video when this row completed it."""
        self._note_worker(row)
        if row.get("dropped"):  # queued when the driver was stopped: left for the rerun
            return None
        key, index = str(row["key"]), int(row["index"])
        if key in self.finished or (key, index) in self.seen:
            return None  # a retried task's second copy
        self.seen.add((key, index))
        state = self._state(key)
        state.count = int(row["count"])
        duration = float(row["duration"])
        if state.duration is None and not math.isnan(duration):
            state.duration = duration
        fps = float(row["fps"])
        if state.fps is None and not math.isnan(fps):
            state.fps = fps  # subtitle gaps are counted in the clip's frames, as locally
        state.cost_s += float(row["decode_s"]) + float(row.get("model_s", 0.0) or 0.0)
        if row["error"]:
            state.error = str(row["error"])
            if row["unreadable"]:
                self.unreadable.add(key)
        elif index >= 0:
            state.windows[index] = (float(row["start"]), float(row["end"]))
            state.times[index] = [float(t) for t in list(row["times"])[: int(row["ntimes"])]]
            state.texts[index] = str(row["text"])
            state.scores[index] = _score(row)
        if not state.complete:
            return None
        self.finished.add(key)
        del self.states[key]
        return state

    def missing(self) -> list[VideoInput]:
        """Videos never finished (their task failed all its retries, or the job stopped)."""
        return [v for key, v in self.videos.items() if key not in self.finished]

    def lost(self, video: VideoInput, reason: str) -> Pending:
        """An error for a video whose work the cluster gave up on."""
        self.finished.add(video.key)
        state = self.states.pop(video.key, None) or Pending(video=video, count=0)
        state.error = f"{video.path}: {reason}"
        return state


def _score(row: dict[str, Any]):
    """The window's confidence.Score from the GPU stage's columns (None when not reported)."""
    from kvcap.caption.confidence import Score

    avg = row.get("avg_logprob")
    if avg is None or math.isnan(float(avg)):
        return None
    return Score(float(avg), int(row.get("tokens", 0) or 0))

