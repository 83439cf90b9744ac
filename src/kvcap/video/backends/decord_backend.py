"""decord sampling: its own GOP-aware `get_batch`, scaling inside its decoder.

decord ignores rotation metadata (kvcap rotates the frames itself) and cannot decode AV1
(`kvcap.video.probe.choose_backend` refuses it). Its native stderr output is captured and turned into the
one-line reason of a `VideoCorrupt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kvcap.errors import one_line
from kvcap.video.backends.quiet import quiet_stderr
from kvcap.video.errors import VideoCorrupt
from kvcap.video.geometry import decode_size, finish_frame
from kvcap.video.threads import decoder_threads


def sample(path: Path, info, times: list[float], size: int | None) -> tuple[list[np.ndarray], list[float]]:
    """One frame per target time (seconds from stream start): the frame shown at that time."""
    import decord

    width, height = decode_size(info.coded_width, info.coded_height, size)
    failure = None
    with quiet_stderr() as log:
        try:
            # decord returns 4-channel frames for some widths (48 for 32 rows, measured) and then
            # fails its own array copy: one column wider avoids it; the centre crop hides it.
            for extra in (0, 1, 2):
                try:
                    count, starts, indices, batch = _read(decord, path, width + extra, height, times, info.start_time)
                    break
                except decord.DECORDError as exc:
                    if "DECORDArrayCopyFromTo" not in str(exc) or size is None or extra == 2:
                        raise
        except decord.DECORDError as exc:
            failure = one_line(exc, first_line=True) if str(exc).strip() else "decoding failed"
    if failure is not None:  # the captured log is complete only once fd 2 is restored
        raise VideoCorrupt(path, f"decord: {log.last_line or failure}")
    if not count:
        raise VideoCorrupt(path, "decord found no frames")
    frames = [finish_frame(image, info.rotation, size) for image in batch]
    return frames, [float(starts[i]) for i in indices]


def _read(decord, path: Path, width: int, height: int, times: list[float], start_time: float):
    """(frame count, frame start times (N,), chosen indices (T,), frames (T, H, W, 3) uint8)."""
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height, num_threads=decoder_threads())
    count = len(reader)
    if not count:
        return 0, None, None, None
    # decord's times are stream timestamps; kvcap's are relative to the stream start.
    starts = reader.get_frame_timestamp(list(range(count)))[:, 0] - start_time
    wanted = np.asarray(times) + 1e-6
    indices = np.clip(np.searchsorted(starts, wanted, side="right") - 1, 0, count - 1)
    batch = reader.get_batch([int(i) for i in indices]).asnumpy()
    return count, starts, indices, batch
