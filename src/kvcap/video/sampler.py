"""Uniform frame sampling: the centres of N equal segments of a clip (or of a window)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kvcap.video.backends import get_backend
from kvcap.video.probe import VideoInfo, probe


@dataclass
class SampledFrames:
    """`frames` (T, S, S, 3) uint8 (or (T, H, W, 3) for size=None); `times` seconds, one per frame.

    `repeated` is True when the clip (or window) had fewer decodable frames than asked, so
    some frames appear more than once; `warning` then says so in one line.
    """

    frames: np.ndarray  # (T, S, S, 3) uint8
    times: list[float]
    info: VideoInfo
    repeated: bool = False
    warning: str | None = None
    backend: str = "pyav"
    target_times: list[float] = field(default_factory=list)


def segment_centres(start: float, end: float, num: int) -> list[float]:
    """Centres of `num` equal segments of [start, end]."""
    step = (end - start) / num
    return [start + (i + 0.5) * step for i in range(num)]


def _window_targets(path: Path, info: VideoInfo, num: int, start: float | None, end: float | None) -> list[float]:
    """Segment centres of the clip, or of [start, end) clipped to the clip."""
    lo = max(0.0, float(start or 0.0))
    hi = info.duration if end is None else min(float(end), info.duration or float(end))
    if start is not None and info.duration and lo >= info.duration:
        raise ValueError(f"{path}: window starts at {lo:.3f} s, after the end ({info.duration:.3f} s)")
    return segment_centres(lo, max(lo, hi), num)


def sample_frames(
    path: str | Path,
    num_frames: int = 8,
    size: int | None = 336,
    backend: str = "auto",
    start: float | None = None,
    end: float | None = None,
) -> SampledFrames:
    """Sample `num_frames` frames uniformly from a clip, or from the window [start, end) seconds.

    Each frame is the one a player shows at the centre of its segment, scaled inside the
    decoder so its shortest side is `size`, then centre-cropped to `size`x`size` (CLIP's
    resize + centre crop); `size=None` keeps the native size (after rotation). Raises a
    typed `VideoError` for an unusable file; too few frames is not an error (`repeated`).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1 or None, got {size}")
    path = Path(path)
    window: dict[str, list[float]] = {}
    from kvcap.video.source import is_zip_member

    if backend == "decord" and is_zip_member(path):
        backend = "pyav"  # decord cannot read a file object: zip members decode with PyAV

    def make_targets(info: VideoInfo) -> list[float]:
        window["targets"] = targets = _window_targets(path, info, num_frames, start, end)
        return targets

    if backend in ("auto", "pyav"):
        # PyAV probes and samples through one open file and one decoder.
        from kvcap.video.backends import pyav_backend

        info, frames, times = pyav_backend.sample_file(path, backend, make_targets, size)
    else:
        info = probe(path, backend)
        frames, times = get_backend(info.backend).sample(path, info, make_targets(info), size)
    distinct = len(set(times))
    repeated = distinct < num_frames
    warning = None
    if repeated:
        where = "window" if start is not None or end is not None else "video"
        warning = f"{path}: only {distinct} decodable frame(s) in the {where} for {num_frames} requested; frames repeated"
    return SampledFrames(
        frames=np.stack(frames), times=times, info=info, repeated=repeated, warning=warning,
        backend=info.backend, target_times=window["targets"],
    )
