"""The pipeline's generate stage: decoded windows -> batches for the model -> texts back on their
videos, which complete in input order.

A batch is at most `batch_size` windows, from one video or several; on out-of-memory it is cut
in halves and no window is lost (autotune.BatchLimit). A video whose decode fails becomes an
error record and its other windows are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from kvcap.caption.decoding import Work
from kvcap.caption.inputs import VideoInput
from kvcap.caption.results import PipelineStats
from kvcap.model.prompt import clean_caption
from kvcap.errors import one_line
from kvcap.video.prefetch import Ahead, OrderedPrefetch
from kvcap.video.scenes import SceneOptions

_log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A video whose windows are being captioned."""

    video: VideoInput
    count: int
    texts: dict[int, str] = field(default_factory=dict)
    windows: dict[int, tuple[float, float]] = field(default_factory=dict)
    times: dict[int, list[float]] = field(default_factory=dict)
    duration: float | None = None
    fps: float | None = None  # the clip's frame rate: subtitle gaps are counted in its frames
    error: str | None = None
    cost_s: float = 0.0
    scores: dict[int, Any] = field(default_factory=dict)  # window -> confidence.Score (None: not reported)

    @property
    def complete(self) -> bool:
        return self.error is not None or len(self.texts) == self.count


def _generate(captioner: Any, features: Any, generation: Any) -> list[tuple[str, Any]]:
    """(text, confidence.Score or None) per clip: scored when the captioner reports token
    log-probabilities (kvcap's Captioner.generate_scored), texts only otherwise."""
    from kvcap.caption.confidence import Score

    scored = getattr(captioner, "generate_scored", None)
    if scored is None:
        return [(text, None) for text in captioner.generate(features, generation)]
    return [(out.text, Score(out.avg_logprob, len(out.ids))) for out in scored(features, generation)]


def _model_context():
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


def caption_clips_scored(captioner: Any, generation: Any, limit: Any, clips: Any) -> list[tuple[str, Any]]:
    """(clean one-line text, confidence.Score or None) for `clips` (B, T, S, S, 3) uint8: encode to
    (B, T, N, D) features, then generate; halved on out-of-memory by `limit` (autotune.BatchLimit),
    no clip lost. The one model step of the local engine and of the Ray GPU workers
    (kvcap.caption.cluster.gpu_stage)."""
    with _model_context():
        outs = limit.run(lambda part: _generate(captioner, captioner.encode(part), generation), clips)
    return [(clean_caption(text), score) for text, score in outs]  # a Captioner's are clean; another's too


def caption_clips(captioner: Any, generation: Any, limit: Any, clips: Any) -> list[str]:
    """The texts of `caption_clips_scored`."""
    return [text for text, _ in caption_clips_scored(captioner, generation, limit, clips)]


def add_decoded(state: Pending, work: Work, sampled: Any) -> list[tuple[Pending, int, Any]]:
    """Record one decoded work item's windows on its video and return the ready items
    `(state, window index, frames (T, S, S, 3))` for the model: one for a window or a whole clip
    (a cue from 0 to the end), one per scene for --segment scenes. Shared by the local engine and
    the Ray decode stage, so both cut the same cues."""
    if isinstance(work.window, SceneOptions):  # one decoded file -> one ready item per scene
        from kvcap.caption.scene_segments import add_scenes

        return add_scenes(state, sampled)
    info = getattr(sampled, "info", None)
    if state.duration is None:
        state.duration = float(info.duration) if info is not None and info.duration else None
    if state.fps is None and info is not None and info.fps:
        state.fps = float(info.fps)
    window = work.window
    if window is None:  # whole clip: one cue from 0 to the end
        end = state.duration if state.duration else (max(sampled.times) if sampled.times else 0.0)
        window = (0.0, round(float(end), 3))
    state.windows[work.index] = window
    state.times[work.index] = [float(t) for t in sampled.times]
    return [(state, work.index, sampled.frames)]


class Batcher:
    """Collects decoded windows (`add`), runs the model on full batches (`run_batch`), and gives
    back the videos that are done, in input order (`completed`)."""

    def __init__(self, captioner: Any, generation: Any, batch_size: int, stats: PipelineStats):
        from kvcap.caption.autotune import BatchLimit, empty_cuda_cache

        self.captioner, self.generation, self.batch_size, self.stats = captioner, generation, batch_size, stats
        self.pending: list[Pending] = []  # videos in input order, not yet written
        self.by_key: dict[str, Pending] = {}
        self.ready: list[tuple[Pending, int, Any]] = []  # (video, window index, frames (T, S, S, 3))
        self.limit = BatchLimit(batch_size, on_oom=empty_cuda_cache, note=lambda text: _log.warning(text))
        self.engines: list[str] = []  # the decode engines that ran, in first-use order
        self.capture_error: str | None = None

    @property
    def engine(self) -> str | None:
        """What decoded the batches so far (`static+cudagraph`, `static`, `hf`; joined if they differed)."""
        return ", ".join(self.engines) or None

    def _note_engine(self) -> None:
        engine = getattr(self.captioner, "last_engine", None)
        if engine and engine not in self.engines:
            self.engines.append(engine)
        self.capture_error = self.capture_error or getattr(self.captioner, "capture_error", None)

    @property
    def full(self) -> bool:
        return len(self.ready) >= self.batch_size

    def _state(self, work: Work) -> Pending:
        state = self.by_key.get(work.video.key)
        if state is None:
            state = Pending(video=work.video, count=work.count, duration=work.duration, error=work.error)
            self.pending.append(state)
            self.by_key[work.video.key] = state
        return state

    def add(self, item: Ahead[Work], prefetch: OrderedPrefetch[Work]) -> None:
        """Take one work item from the prefetch: wait for its frames and queue them for the model."""
        work, stats = item.task, self.stats
        state = self._state(work)
        if work.error is not None or state.error is not None:
            item.cancel()
            return
        t0 = time.perf_counter()
        try:
            sampled, decode_s = prefetch.result(item)
        except Exception as exc:  # noqa: BLE001 - a bad file becomes its error record
            state.error = one_line(exc)
            self.ready[:] = [r for r in self.ready if r[0] is not state]  # drop its other windows
            return
        finally:
            stats.wait_s += time.perf_counter() - t0
        stats.decode_s += decode_s
        state.cost_s += decode_s
        self.ready.extend(add_decoded(state, work, sampled))

    def run_batch(self) -> None:
        """Encode + generate the next batch of ready windows; their texts go on their videos."""
        import numpy as np

        captioner, stats, limit = self.captioner, self.stats, self.limit
        batch = self.ready[: limit.size]
        del self.ready[: limit.size]
        clips = np.stack([frames_ for _, _, frames_ in batch])  # (B, T, S, S, 3) uint8
        t0 = time.perf_counter()
        scored = caption_clips_scored(captioner, self.generation, limit, clips)
        spent = time.perf_counter() - t0
        stats.model_s += spent
        self._note_engine()
        stats.batches += 1
        stats.items += len(batch)
        for (state, index, _), (text, score) in zip(batch, scored):
            state.texts[index] = text
            state.scores[index] = score
            state.cost_s += spent / len(batch)

    def completed(self) -> Iterator[Pending]:
        """The videos at the front of the input order whose windows are all captioned (or failed)."""
        while self.pending and self.pending[0].complete:
            state = self.pending.pop(0)
            self.by_key.pop(state.video.key, None)
            yield state
