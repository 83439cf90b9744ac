"""One small JPEG strip per video: the frames the model was given, sampled again.

The caption pipeline samples each segment with `kvcap.video.sample_frames` (the centres of N
equal parts of the clip or of the segment's window, scaled so the short side is the encoder's
size, then centre-cropped). The strip calls the same sampler with the same windows and frame
count, only at the tile size: the decoder scales to `TILE` px instead of 336, so a tile is the
model's crop at thumbnail resolution. Tiles sit left to right in frame order, segments one after
the other.

Strips are named by a hash of what they show (key, windows, frame times, tile size), so a
second `kvcap review` reuses them and a recaptioned video gets a new one.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from kvcap.errors import one_line
from kvcap.fsutil import atomic_write_bytes

TILE = 64
"""Tile side in pixels (the size budget: 8 tiles a clip is a 512x64 strip, ~2-6 KB)."""
JPEG_QUALITY = 80
TIME_TOLERANCE_S = 0.1
"""Resampled frame times may differ this much from the record's (a scene's frames are sampled
inside one decode pass while captioning); more means the file is not the one captioned."""
STRIPS_DIR = "review"


@dataclass(frozen=True)
class StripPlan:
    """What to sample for one video: (start, end) per segment, None for the whole clip."""

    key: str
    path: Path
    windows: tuple[tuple[float, float] | None, ...]
    frames_per_window: int
    frame_times: tuple[float, ...]

    @property
    def name(self) -> str:
        ident = repr((self.key, self.windows, self.frames_per_window, self.frame_times, TILE, JPEG_QUALITY))
        return hashlib.sha1(ident.encode("utf-8")).hexdigest()[:20] + ".jpg"


def plan_strip(key: str, path: Path, segments: list[dict], frame_times: list[float], duration: float | None) -> StripPlan | None:
    """The sampling that reproduces the captioning's frames, or None when the record has none."""
    if not segments or not frame_times or len(frame_times) % len(segments):
        return None
    per_window = len(frame_times) // len(segments)
    windows: list[tuple[float, float] | None] = []
    for segment in segments:
        start, end = float(segment.get("start") or 0.0), float(segment.get("end") or 0.0)
        whole = len(segments) == 1 and start == 0.0 and (duration is None or abs(end - duration) < 2e-3)
        # The whole clip was sampled with no window (the pipeline's `window is None`).
        windows.append(None if whole else (start, end))
    return StripPlan(key=key, path=path, windows=tuple(windows), frames_per_window=per_window,
                     frame_times=tuple(float(t) for t in frame_times))


def sample_tiles(plan: StripPlan, backend: str = "auto"):
    """(tiles (N, TILE, TILE, 3) uint8, times) sampled exactly as the caption job did, at TILE px."""
    import numpy as np

    from kvcap.video import sample_frames

    tiles, times = [], []
    for window in plan.windows:
        start, end = (None, None) if window is None else window
        sampled = sample_frames(plan.path, num_frames=plan.frames_per_window, size=TILE, backend=backend,
                                start=start, end=end)
        tiles.append(sampled.frames)  # (T, TILE, TILE, 3)
        times.extend(sampled.times)
    return np.concatenate(tiles), times


def encode_strip(tiles) -> bytes:
    """Tiles (N, S, S, 3) side by side as one JPEG (N*S x S)."""
    from PIL import Image

    count, size = tiles.shape[0], tiles.shape[1]
    strip = tiles.transpose(1, 0, 2, 3).reshape(size, count * size, 3)  # (S, N*S, 3)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


@dataclass
class StripResult:
    plan: StripPlan
    file: str | None = None  # relative to OUT ("review/<hash>.jpg")
    error: str | None = None
    reused: bool = False


def write_strip(plan: StripPlan, out: Path, backend: str = "auto") -> StripResult:
    """Write (or reuse) the strip of one video under OUT/review/; a file that cannot be
    sampled is an error on that row, never the page's."""
    rel = f"{STRIPS_DIR}/{plan.name}"
    target = out / rel
    if target.is_file():
        return StripResult(plan, rel, reused=True)
    try:
        tiles, times = sample_tiles(plan, backend)
    except Exception as exc:  # noqa: BLE001 - a moved or broken file is shown on its row
        return StripResult(plan, None, error=one_line(exc))
    if len(times) != len(plan.frame_times) or any(abs(a - b) > TIME_TOLERANCE_S for a, b in zip(times, plan.frame_times)):
        # Not the frames the model was given: the file changed after it was captioned.
        return StripResult(plan, None, error=f"{plan.path}: changed since it was captioned (frames now at "
                                             f"{_seconds(times)} s, the record says {_seconds(plan.frame_times)} s)")
    atomic_write_bytes(target, encode_strip(tiles))
    return StripResult(plan, rel)


def _seconds(times) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def write_strips(plans: list[StripPlan], out: Path, workers: int, backend: str = "auto") -> dict[str, StripResult]:
    """{key: result} for every plan, decoded in `workers` threads (PyAV releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    (out / STRIPS_DIR).mkdir(parents=True, exist_ok=True)
    if workers <= 1:
        return {p.key: write_strip(p, out, backend) for p in plans}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kvcap-review") as pool:
        results = pool.map(lambda p: write_strip(p, out, backend), plans)
        return {r.plan.key: r for r in results}


def prune_strips(out: Path, keep: set[str]) -> int:
    """Delete strips no row points at any more (a recaptioned or removed video); returns how many."""
    folder = out / STRIPS_DIR
    removed = 0
    for path in folder.glob("*.jpg") if folder.is_dir() else []:
        if f"{STRIPS_DIR}/{path.name}" not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
