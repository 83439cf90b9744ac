"""PyAV sampling: seek only into a later GOP, skip unneeded non-reference frames, scale in swscale.

Decoding is 95-100% of sampling time, so the work is in decoding fewer frames:

- Targets are visited in time order. The decoder seeks only when the next target's GOP (the
  last keyframe at or before it, from the container index) starts after the last decoded
  frame; otherwise it decodes on. Seeking once per target decodes more frames than the whole
  clip has with x264's default keyframe interval of 250.
- While catching up to a target, packets more than `CATCH_UP_MARGIN_FRAMES` before it are
  decoded with `skip_frame="NONREF"`: frames no other frame references (most B-frames) are
  dropped by the decoder itself. Near the target everything is decoded, so the chosen frame
  is the one a player shows.
- The probe and the sampling share one open file and one decoder.
- Frames are converted to RGB at the target size by swscale in one step (`to_ndarray(width=,
  height=)`), only for the chosen frames.
- `thread_type="AUTO"` (frame + slice threads).
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kvcap.video.avcompat import to_rgb24
from kvcap.video.errors import VideoCorrupt
from kvcap.video.geometry import decode_size, finish_frame
from kvcap.video.threads import decoder_threads
from kvcap.video.probe import VideoInfo, inspect, open_container, video_stream

# Full decoding starts this many frame durations before a target; earlier non-reference
# frames are dropped by the decoder. The frame shown at the target is always decoded.
CATCH_UP_MARGIN_FRAMES = 1.5
# swscale's bilinear widens its filter when downscaling (so it is antialiased, like CLIP's
# bicubic resize) and runs threaded at half bicubic's cost: ~2 ms vs ~6.4 ms per 1080p frame.
INTERPOLATION = "BILINEAR"
SCALE_THREADS = min(8, os.cpu_count() or 1)


def _pts(frame) -> int:
    if frame.pts is not None:
        return frame.pts
    return frame.dts if frame.dts is not None else 0


def keyframe_timestamps(stream) -> list[int]:
    """Sorted keyframe timestamps from the container index (empty when there is none).

    MP4 indexes every sample (timestamps are DTS, a few frames before PTS); Matroska cues
    and AVI idx1 list keyframes. An empty list means: never seek, decode forward.
    """
    try:
        return sorted({e.timestamp for e in stream.index_entries if e.is_keyframe})
    except Exception:  # pragma: no cover - odd demuxers
        return []


class _Decoder:
    """Frames in presentation order from the current position; `skip_before` drops non-ref frames."""

    def __init__(self, container, stream, pending: list):
        self.container, self.stream, self.ctx = container, stream, stream.codec_context
        self.skip_before: int | None = None
        self._iter = self._frames(pending)

    def _frames(self, pending: list):
        import av

        yield from pending
        ctx = self.ctx
        try:
            for packet in self.container.demux(self.stream):
                skip = packet.pts is not None and self.skip_before is not None and packet.pts < self.skip_before
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                yield from ctx.decode(packet)
        except av.FFmpegError:
            return  # damaged or truncated data: what decoded so far is what there is

    def seek(self, pts: int) -> None:
        """Go to the keyframe at or before `pts` (PyAV flushes the decoder)."""
        import av

        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError:
            self.container.seek(0, stream=self.stream, backward=True)
        self._iter = self._frames([])

    def next(self):
        return next(self._iter, None)


def _gop_start(keyframes: list[int], target: int) -> int | None:
    """The last keyframe timestamp at or before `target` (None: before the first, or no index)."""
    i = bisect.bisect_right(keyframes, target) - 1
    return keyframes[i] if i >= 0 else None


def choose_frames(decoder: _Decoder, targets: list[int], keyframes: list[int], margin: int, first) -> list:
    """The frame shown at each target pts (ascending), seeking only into a later GOP."""
    last, ahead = None, first  # last frame at or before the target; a frame read past it
    chosen = []
    for target in targets:
        position = max((_pts(f) for f in (last, ahead) if f is not None), default=None)
        gop = _gop_start(keyframes, target)
        if gop is not None and position is not None and gop > position:
            decoder.seek(target)
            last = ahead = None
        decoder.skip_before = target - margin
        while True:
            if ahead is None:
                ahead = decoder.next()
                if ahead is None:
                    break  # end of the stream, or of its decodable data
            if last is None or _pts(ahead) <= target:
                last, ahead = ahead, None
                if _pts(last) >= target:
                    break
            else:
                break
        if last is None:  # nothing decodes past here (truncated data): repeat the last good frame
            if not chosen:
                raise VideoCorrupt(decoder.container.name, "no frame could be decoded")
            last = chosen[-1]
        chosen.append(last)
    return chosen


def to_rgb(frame, info: VideoInfo, size: int | None) -> np.ndarray:
    """(S, S, 3) uint8 (or native (H, W, 3)): swscale scales and converts in one pass."""
    width, height = decode_size(info.coded_width, info.coded_height, size)
    rgb = to_rgb24(frame, width, height, INTERPOLATION, SCALE_THREADS)
    return finish_frame(rgb, info.rotation, size)


def sample_file(
    path: Path, backend: str, make_targets: Callable[[VideoInfo], list[float]], size: int | None,
) -> tuple[VideoInfo, list[np.ndarray], list[float]]:
    """Open once: probe, then sample the targets `make_targets(info)` (seconds from stream start).

    Returns (info, frames, frame times). The probe's first decoded frame starts the decoding,
    so a clip whose first target lies in the first GOP is read from the start without a seek.
    """
    import av

    try:
        return _sample_open(path, backend, make_targets, size)
    except av.FFmpegError as exc:  # anything the decoder raises past the checks: one typed line
        raise VideoCorrupt(path, f"decoding failed: {exc.strerror or exc}") from None


def _sample_open(path: Path, backend: str, make_targets, size: int | None):
    with open_container(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"  # frame + slice threads; must be set before the codec opens
        if decoder_threads():  # sized to the cores by kvcap.video.threads (0 = FFmpeg decides)
            stream.codec_context.thread_count = decoder_threads()
        info, first = inspect(container, stream, path, backend)
        times = make_targets(info)
        tb, origin = stream.time_base, stream.start_time or 0
        # floor: with a coarse time base (AVI's 1/fps) rounding would step to the next frame
        targets = [origin + math.floor(t / tb + 1e-9) for t in times]  # (T,) stream time base
        frame_s = 1.0 / info.fps if info.fps > 0 else 0.04
        margin = max(1, int(CATCH_UP_MARGIN_FRAMES * frame_s / tb))
        decoder = _Decoder(container, stream, first[1:])
        chosen = choose_frames(decoder, targets, keyframe_timestamps(stream), margin, first[0])
        frames, cache = [], {}
        for frame in chosen:
            if id(frame) not in cache:  # a repeated frame is converted once
                cache[id(frame)] = to_rgb(frame, info, size)
            frames.append(cache[id(frame)])
        return info, frames, [float((_pts(f) - origin) * tb) for f in chosen]


def sample(path: Path, info: VideoInfo, times: list[float], size: int | None) -> tuple[list[np.ndarray], list[float]]:
    """Backend interface: one frame per target time for an already probed file."""
    _, frames, frame_times = sample_file(path, "pyav", lambda _info: times, size)
    return frames, frame_times
