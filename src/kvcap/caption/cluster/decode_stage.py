"""The Ray CPU decode stage: each task takes a few videos (stages.decode_tasks) and cuts each into
work exactly as the local engine does (kvcap.caption.decoding.plan_work: the whole clip,
--segment windows, or one scan for --segment scenes), decodes it with the same sampler and
emits one row per window for the GPU stage. Frames stay in Ray's object store between this
stage and the captioner actors.

A row:  key, path, index (window number; -1 for a video-level row), count (windows in the
video), start, end, times (padded to T; the first ntimes are real), ntimes, duration and fps
(NaN when unknown), frames (T, S, S, 3) uint8, has_frames,
error ("" when none), unreadable (the file cannot be read on this node), decode_s, node.

A bad video becomes one video-level error row here, so it never reaches (or kills) an actor.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

from kvcap.caption.batching import Pending, add_decoded
from kvcap.caption.inputs import VideoInput
from kvcap.errors import one_line

PID_DIR_ENV = "KVCAP_RAY_PID_DIR"  # test hook: each stage process writes its pid here (the dashboard is off)


def note_pid(stage: str, busy: bool = True) -> None:
    """Test hook: with KVCAP_RAY_PID_DIR set, `<stage>-<pid>` is there while this process works on
    the stage (`busy`), so a test can SIGKILL it mid-task."""
    folder = os.environ.get(PID_DIR_ENV)
    if not folder:
        return
    marker = Path(folder, f"{stage}-{os.getpid()}")
    if busy:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def node_name() -> str:
    return socket.gethostname()


class StopFlag:
    """A tiny Ray actor: set by the driver on the first Ctrl-C so decode tasks stop taking work."""

    def __init__(self) -> None:
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped


def stopped(stop: Any) -> bool:
    """Whether the driver's first Ctrl-C has set `stop` (a StopFlag actor; None = never)."""
    if stop is None:
        return False
    import ray

    return bool(ray.get(stop.is_set.remote()))


def video_row(video: VideoInput, *, frames: int, size: int, error: str = "", unreadable: bool = False,
              count: int = 0, duration: float | None = None, fps: float | None = None) -> dict[str, Any]:
    """A row that carries no window to caption: a failed video, or one with no scenes."""
    import numpy as np

    return {"key": video.key, "path": str(video.path), "index": -1, "count": count, "start": 0.0, "end": 0.0,
            "times": np.zeros(frames, dtype=np.float64), "ntimes": 0, "duration": math.nan if duration is None else duration,
            "fps": math.nan if fps is None else fps,
            "frames": np.zeros((frames, size, size, 3), dtype=np.uint8), "has_frames": False, "error": error,
            "unreadable": unreadable, "decode_s": 0.0, "node": node_name()}


def _window_rows(video: VideoInput, state: Pending, ready: list, decode_s: float, frames: int) -> list[dict]:
    import numpy as np

    rows = []
    for _, index, clip in ready:  # clip: (T, S, S, 3) uint8
        start, end = state.windows[index]
        times = np.zeros(frames, dtype=np.float64)
        got = state.times[index][:frames]
        times[: len(got)] = got
        rows.append({"key": video.key, "path": str(video.path), "index": index, "count": state.count,
                     "start": float(start), "end": float(end), "times": times, "ntimes": len(got),
                     "duration": math.nan if state.duration is None else float(state.duration),
                     "fps": math.nan if state.fps is None else float(state.fps),
                     "frames": np.asarray(clip, dtype=np.uint8), "has_frames": True, "error": "",
                     "unreadable": False, "decode_s": decode_s / max(1, len(ready)), "node": node_name()})
    return rows


def decode_video(row: dict[str, Any], *, frames: int, size: int, backend: str, segment: Any,
                 stop: Any = None, decoder_threads: int = 1) -> list[dict[str, Any]]:
    """Ray Data `flat_map` function: one input row {key, path} -> its window rows (or one error row).

    After the first Ctrl-C (`stop` set) a video not yet started yields nothing: it stays undone
    for the rerun, and the job drains what is already in flight."""
    from kvcap.video import threads

    note_pid("decode")
    threads.set_decoder_threads(decoder_threads)  # the task's CPUs, as the local plan gives each decoder
    try:
        if stopped(stop):
            return []
        return _decode_rows(VideoInput(path=Path(row["path"]), key=str(row["key"])), frames, size, backend, segment)
    finally:
        note_pid("decode", busy=False)


def _decode_rows(video: VideoInput, frames: int, size: int, backend: str, segment: Any) -> list[dict[str, Any]]:
    from kvcap.caption.decoding import decode, plan_work

    if not os.access(video.path, os.R_OK):
        why = "no such file" if not os.path.exists(video.path) else "permission denied"
        return [video_row(video, frames=frames, size=size, unreadable=True,
                          error=f"{video.path}: cannot read it on node {node_name()} ({why})")]
    works = list(plan_work([video], segment, backend))
    state = Pending(video=video, count=works[0].count, duration=works[0].duration, error=works[0].error)
    if state.error is not None:
        return [video_row(video, frames=frames, size=size, error=state.error)]
    ready: list = []
    decode_s = 0.0
    try:
        for work in works:  # the same decode (and scene scan) as the local engine's threads
            sampled, seconds = decode(video.path, frames, size, backend, work.window)
            decode_s += seconds
            ready.extend(add_decoded(state, work, sampled))
    except Exception as exc:  # noqa: BLE001 - every per-file failure becomes a record
        return [video_row(video, frames=frames, size=size, error=one_line(exc))]
    if not ready:  # e.g. no scene long enough: an ok record with no cue, as locally
        return [video_row(video, frames=frames, size=size, count=state.count, duration=state.duration, fps=state.fps)]
    return _window_rows(video, state, ready, decode_s, frames)
