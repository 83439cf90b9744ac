"""The one place that knows how PyAV releases differ (pyproject allows av>=17).

Every kvcap call into PyAV whose spelling changed between the releases pyproject allows goes
through here, so a new PyAV release is handled (and tested) in one module:

- `open_input(path)`: `av.open(path, "r")` that never fails on metadata that is not UTF-8.
  av 17-18 decode metadata strictly unless told `metadata_errors="ignore"`; av 19 removed that
  argument (passing it raises TypeError) and decodes with surrogate escapes instead.
- `is_cover_art(stream)`: the stream is an attached picture (cover art), not video. av 19's
  `stream.disposition` is an IntFlag; av 17's a plain Flag that `& int` rejects (TypeError).
- `to_rgb24(frame, width, height, interpolation, threads)`: swscale's RGB conversion and
  scaling in one pass. `threads=` exists from av 17 on (av 12-16 raise TypeError on it, which
  is why pyproject's lower bound is 17: rotation, dispositions and index entries, which the
  sampler needs, also arrived between 15 and 17).

Measured on av 17.0.0 (Python 3.10), 18.1.0 (3.11) and 19.0.2 (3.12/3.13) by `make test-compat`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

def av_version() -> tuple[int, ...]:
    """PyAV's release as a tuple of ints, e.g. (19, 0, 2)."""
    import av

    parts = []
    for piece in av.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@lru_cache(maxsize=1)
def _open_kwargs() -> dict[str, str]:
    """av < 19 needs `metadata_errors="ignore"` to open files with non-UTF-8 metadata."""
    return {"metadata_errors": "ignore"} if av_version() < (19,) else {}


def open_input(path: Any) -> Any:
    """`av.open(path, "r")` (a path or a readable, seekable file object such as a zip member),
    tolerant of metadata that is not UTF-8 on every release."""
    import av

    return av.open(path, "r", **_open_kwargs())


def to_rgb24(frame: Any, width: int, height: int, interpolation: str, threads: int) -> Any:
    """(height, width, 3) uint8: the frame scaled and converted to RGB by swscale in one pass."""
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=interpolation, threads=threads)


ATTACHED_PIC = 0x0400  # AV_DISPOSITION_ATTACHED_PIC


def is_cover_art(stream: Any) -> bool:
    """Whether a stream is cover art (an attached picture), on every PyAV release."""
    disposition = stream.disposition
    return bool(int(getattr(disposition, "value", disposition)) & ATTACHED_PIC)
