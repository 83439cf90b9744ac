"""The pipeline's decode stage: each video cut into work (the whole clip, fixed --segment windows,
or one scan for --segment scenes), decoded ahead in threads by the shared ordered prefetch
(kvcap.video.prefetch), handed to the model thread in input order."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kvcap.caption.inputs import VideoInput
from kvcap.errors import one_line
from kvcap.video.prefetch import OrderedPrefetch
from kvcap.video.scenes import SceneOptions

Window = tuple[float, float]


@dataclass
class Work:
    """One unit to decode: a window (or whole clip, or the scene scan) of a video, or a failed probe."""

    video: VideoInput
    index: int  # window number within the video
    count: int  # windows in the video (0 when the probe failed)
    window: Window | SceneOptions | None
    error: str | None = None
    duration: float | None = None


def segment_windows(duration: float, seconds: float) -> list[Window]:
    """Fixed windows of `seconds` over [0, duration]; a tail under a quarter window joins the
    one before it (so float rounding never makes a 0.01 s cue)."""
    if seconds <= 0 or duration <= seconds:
        return [(0.0, float(duration))]
    windows: list[Window] = []
    start = 0.0
    while start < duration - 1e-6:
        end = min(start + seconds, float(duration))
        windows.append((start, end))
        start = end
    if len(windows) > 1 and windows[-1][1] - windows[-1][0] < seconds / 4:
        last = windows.pop()
        windows[-1] = (windows[-1][0], last[1])
    return [(round(s, 3), round(e, 3)) for s, e in windows]


def _windows(video: VideoInput, segment: float | SceneOptions, backend: str) -> tuple[list | None, float | None, str | None]:
    """(windows, duration, error) of one video; probing it only for fixed windows."""
    if isinstance(segment, SceneOptions):
        return [segment], None, None
    if segment <= 0:
        return [None], None, None
    from kvcap.video import probe

    try:
        info = probe(video.path, backend=backend)
    except Exception as exc:  # noqa: BLE001 - every per-file failure becomes a record
        return None, None, one_line(exc)
    duration = float(info.duration or 0.0)
    if duration <= 0:
        return None, None, f"{video.path}: unknown duration, cannot cut --segment windows"
    return segment_windows(duration, segment), duration, None


def plan_work(videos: list[VideoInput], segment: float | SceneOptions, backend: str) -> Iterator[Work]:
    """The work items of `videos` in input order (walked by the prefetch's feeder thread)."""
    for video in videos:
        windows, duration, error = _windows(video, segment, backend)
        if error is not None:
            yield Work(video, 0, 0, None, error=error)
            continue
        for index, window in enumerate(windows):
            yield Work(video, index, len(windows), window, duration=duration)


def decode(path: Path, frames: int, size: int, backend: str, window: Window | SceneOptions | None):
    """(sampled frames, decode seconds); a SceneScan for --segment scenes (see scene_segments.py)."""
    from kvcap.video import sample_frames

    if isinstance(window, SceneOptions):  # --segment scenes: one decode finds the shots, samples each
        from kvcap.caption.scene_segments import decode_scenes

        return decode_scenes(path, frames, size, backend, window)
    start = time.perf_counter()
    if window is None:
        sampled = sample_frames(path, num_frames=frames, size=size, backend=backend)
    else:
        sampled = sample_frames(path, num_frames=frames, size=size, backend=backend, start=window[0], end=window[1])
    return sampled, time.perf_counter() - start


def prefetch(videos: list[VideoInput], *, frames: int, size: int, backend: str, segment: float | SceneOptions,
             workers: int, batch_size: int) -> OrderedPrefetch[Work]:
    """The ordered prefetch of `videos` (not started): `workers` decode threads at lower priority,
    each given its share of FFmpeg's threads, a lookahead of two batches (one file or two for
    scenes: a scanned file holds all its scenes' frames)."""
    from kvcap.video import threads

    threads.set_decoder_threads(threads.plan(workers)[1])  # workers x FFmpeg threads = the cores
    lookahead = (max(2 * batch_size, 2 * workers) if not isinstance(segment, SceneOptions)
                 else max(2, workers + 1))
    return OrderedPrefetch(
        plan_work(videos, segment, backend), lambda w: decode(w.video.path, frames, size, backend, w.window),
        workers=workers, lookahead=lookahead, wanted=lambda w: w.error is None, name="kvcap-decode", nice=True,
    )
