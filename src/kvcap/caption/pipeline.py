"""The batch captioning pipeline shared by `kvcap caption`, the trainer's eval and the TUI.

    plan (list videos ─► [shard slice] ─► skip done ones)                      plan.py
      ─► decode ahead (threads, bounded queue, input order: video/prefetch.py)  decoding.py
      ─► batches of clips (or of --segment windows, or of scenes: one decode finds the shots
         and samples each, see scene_segments.py) ─► captioner.encode + generate  batching.py
      ─► subtitles (atomic) ─► captions.jsonl record (one whole flushed line) ─► yield   sink.py

Decoding runs ahead in background threads (decord and PyAV release the GIL while they decode)
while the main thread runs the model, so on a model-bound job the decode time hides behind
compute. Results come out in input order, one batch at a time, as each batch finishes.
`CaptionJob` ties the stages together; `caption_folder` is its one-call form.

Kill safety and resume: see `CaptionsLedger` in `job.py`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from kvcap.caption.job import JobProgress
from kvcap.caption.plan import CaptionOptions, JobPlan, as_paths, plan_job
from kvcap.caption.results import CaptionResult, PipelineStats
from kvcap.errors import one_line


class CaptionerLike(Protocol):
    """What the pipeline needs of a captioner (kvcap.model.captioner.Captioner, or a fake)."""

    image_size: int
    frames: int

    def encode(self, frames: Any) -> Any: ...  # uint8 (B, T, S, S, 3) -> features (B, T, N, D)

    def generate(self, features: Any, gen: Any) -> list[str]: ...


class CaptionJob:
    """One caption job: a plan, then `run()` decodes ahead, generates in batches and writes
    each video as it completes, in input order."""

    def __init__(self, paths: list[str | Path], captioner: CaptionerLike, plan: JobPlan, options: CaptionOptions, *,
                 progress: Callable[[JobProgress, CaptionResult | None], None] | None = None,
                 stop: threading.Event | None = None, stats: PipelineStats | None = None):
        self.paths, self.captioner, self.plan, self.options = paths, captioner, plan, options
        self.progress, self.stop = progress, stop
        self.stats = stats if stats is not None else PipelineStats()

    @classmethod
    def create(cls, paths: str | Path | Iterable[str | Path], captioner: CaptionerLike, out_dir: str | Path | None,
               options: CaptionOptions, *, skipped: list[Path] | None = None, progress=None, stop=None,
               stats=None) -> "CaptionJob":
        """Plan the job (`caption_folder`'s arguments)."""
        paths = as_paths(paths)
        plan = plan_job(paths, out_dir, options, skipped if skipped is not None else [])
        return cls(paths, captioner, plan, options, progress=progress, stop=stop, stats=stats)

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def run(self, started: float | None = None) -> Iterator[CaptionResult]:
        """Yield one CaptionResult per video in input order (see `caption_folder`)."""
        from kvcap.caption.decoding import prefetch
        from kvcap.caption.sink import CaptionSink

        plan, o, stats = self.plan, self.options, self.stats
        wall_start = started if started is not None else time.perf_counter()
        sink = CaptionSink.for_job(plan, o, self.paths, progress=self.progress)
        ahead = prefetch(plan.todo, frames=o.frames_for(self.captioner), size=int(self.captioner.image_size),
                         backend=o.backend, segment=o.segment,
                         workers=o.workers, batch_size=o.batch_size)
        status, error = "interrupted", None
        try:
            for video in plan.done_before:
                yield sink.skipped(video, plan.previous[video.key])
            ahead.start()
            if (yield from self._generate(ahead, sink)):
                status = "finished"
        except GeneratorExit:
            status = "interrupted"
            raise
        except BaseException as exc:
            status, error = ("interrupted", None) if isinstance(exc, KeyboardInterrupt) else ("failed", one_line(exc))
            raise
        finally:
            ahead.close()
            stats.wall_s = time.perf_counter() - wall_start
            sink.close(plan.order, status, error)

    def _generate(self, ahead, sink) -> Iterator[CaptionResult]:
        """Fill a batch from the prefetch, run it, write what completed; returns True at the end
        of the stream, False when stopped."""
        from kvcap.caption.batching import Batcher

        batcher = Batcher(self.captioner, self.options.generation, self.options.batch_size, self.stats)
        stream_open = True
        while stream_open or batcher.ready:
            if self._stopped():
                return False
            # Fill a batch from the decoder (the wait is the part decoding did not hide).
            while stream_open and not batcher.full:
                t0 = time.perf_counter()
                item = ahead.get(self.stop)
                self.stats.wait_s += time.perf_counter() - t0
                if item is None:
                    stream_open = False
                    break
                batcher.add(item, ahead)
            if self._stopped():
                return False
            if batcher.ready:
                batcher.run_batch()
                sink.note_engine(batcher.engine, batcher.capture_error)
            for state in batcher.completed():
                yield sink.put(state)
        for state in batcher.completed():  # trailing error-only videos
            yield sink.put(state)
        return True


def caption_folder(
    paths: str | Path | Iterable[str | Path],
    captioner: CaptionerLike,
    out_dir: str | Path | None,
    options: CaptionOptions | None = None,
    *,
    progress: Callable[[JobProgress, CaptionResult | None], None] | None = None,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
    skipped: list[Path] | None = None,
) -> Iterator[CaptionResult]:
    """Caption every video under `paths` as `options` say (CaptionOptions' defaults when None),
    yielding one CaptionResult per video in input order.

    With `out_dir`, writes `captions.jsonl` (or the shard's part), subtitles in `options.formats`
    and `job.json`, and skips videos already `ok` there (unless `options.overwrite`).
    `out_dir=None` only yields results (the trainer's eval). Videos already done are yielded first
    with `skipped=True`. `progress(job, result)` is called once at the start (result None) and
    after each video. Setting `stop` ends the job after the batch being generated (job.json says
    `interrupted`); so does closing the generator. Files under the folders that are not videos
    are appended to `skipped` when given; no video at all raises `NoVideosError` before anything
    is written.
    """
    started = time.perf_counter()
    job = CaptionJob.create(paths, captioner, out_dir, options or CaptionOptions(), skipped=skipped,
                            progress=progress, stop=stop, stats=stats)
    yield from job.run(started)
