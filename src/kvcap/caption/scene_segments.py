"""`--segment scenes` in the pipeline: decode a file once into its scenes, then one ready item
(one cue) per scene. Called from the pipeline's decode and generate stages (decoding.py, batching.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kvcap.video.scenes import SceneOptions, SceneScan, scan_scenes


def decode_scenes(path: Path, frames: int, size: int, backend: str, options: SceneOptions) -> tuple[SceneScan, float]:
    """(the file's scenes with `frames` frames sampled in each, decode seconds)."""
    start = time.perf_counter()
    scan = scan_scenes(path, num_frames=frames, size=size, backend=backend, options=options)
    return scan, time.perf_counter() - start


def add_scenes(state: Any, scan: SceneScan) -> list[tuple[Any, int, Any]]:
    """Record each scene as a window of the pipeline's `Pending` video (batching.py); returns the ready items
    `(state, scene index, frames (T, S, S, 3))` for the model, in scene order."""
    state.count = len(scan.scenes)
    if state.duration is None and scan.info.duration:
        state.duration = float(scan.info.duration)
    if state.fps is None and scan.info.fps:
        state.fps = float(scan.info.fps)
    ready = []
    for index, scene in enumerate(scan.scenes):
        state.windows[index] = (scene.start, scene.end)
        state.times[index] = [float(t) for t in scene.times]
        ready.append((state, index, scene.frames))
    return ready
