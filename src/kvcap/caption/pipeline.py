"""The batch captioning pipeline shared by `kvcap caption`, the trainer's eval and the TUI.

    list videos ─► [shard slice] ─► skip done ones ─► decode workers (threads, bounded queue)
        ─► batches of clips (or of --segment windows, or of scenes: one decode finds the shots
           and samples each, see scene_segments.py) ─► captioner.encode + generate
        ─► subtitles (atomic) ─► captions.jsonl record (one whole flushed line) ─► yield

Decoding runs ahead in background threads (decord and PyAV release the GIL while they decode)
while the main thread runs the model, so on a model-bound job the decode time hides behind
compute. Results come out in input order, one batch at a time, as each batch finishes.

Kill safety and resume: see `CaptionsLedger` in `job.py`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from kvcap.caption.job import CaptionsLedger, JobFile, JobProgress
from kvcap.caption.shard import JOB_NAME, JSONL_NAME, Shard, parse_shard
from kvcap.errors import one_line
from kvcap.video.scenes import SceneOptions

FORMATS = ("jsonl", "srt", "vtt", "txt", "tsv")
DECODE_NICENESS = 5  # decode threads' priority below the model thread's (see _yield_to_the_model)
SUBTITLE_FORMATS = ("srt", "vtt", "txt", "tsv")  # the per-video files (writers.SUBTITLE_WRITERS)
SCENES = "scenes"  # `segment` value: one cue per detected shot (kvcap.caption.scene_segments)


class CaptionerLike(Protocol):
    """What the pipeline needs of a captioner (kvcap.model.captioner.Captioner, or a fake)."""

    image_size: int
    frames: int

    def encode(self, frames: Any) -> Any: ...  # uint8 (B, T, S, S, 3) -> features (B, T, N, D)

    def generate(self, features: Any, gen: Any) -> list[str]: ...


# ---------------------------------------------------------------------------------------------
# Inputs and output names
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInput:
    """A video file and its name in the outputs (posix path relative to its input root)."""

    path: Path
    key: str


def resolve_inputs(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[VideoInput]:
    """List the videos under `paths` and give each a stable, clash-free output key.

    One input root (a folder, or files from one folder): keys are paths relative to it. Several
    roots: keys are prefixed with the root folder's name (`a/x.mp4`, `b/x.mp4`), made unique
    with `-2`, `-3` when two roots share a name. A file reached twice is listed once.
    """
    from kvcap.video import list_videos
    from kvcap.video.source import (  # zip parts and manifests too
        expand_input,
        input_root,
        output_key,
    )

    roots: list[tuple[Path, list[Path]]] = []  # (root dir, files under it) in input order
    for raw in paths:
        given = Path(raw)
        root = input_root(given)
        files = expand_input(given)
        files = list_videos([given], skipped=skipped) if files is None else files
        for existing_root, existing_files in roots:
            if existing_root.resolve() == root.resolve():
                existing_files.extend(files)
                break
        else:
            roots.append((root, list(files)))

    labels: list[str] = []
    if len(roots) > 1:
        used: dict[str, int] = {}
        for root, _ in roots:
            base = root.resolve().name or "root"
            used[base] = used.get(base, 0) + 1
            labels.append(base if used[base] == 1 else f"{base}-{used[base]}")

    seen: set[Path] = set()
    inputs: list[VideoInput] = []
    for number, (root, files) in enumerate(roots):
        for file in files:
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            rel = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name
            rel = output_key(rel)  # a zip member `a.zip::b.mp4` is written as `a.zip/b`
            key = f"{labels[number]}/{rel}" if labels else rel
            inputs.append(VideoInput(path=file, key=key))
    return inputs


def subtitle_names(keys: Sequence[str]) -> dict[str, str]:
    """Output stem per key: `a/x.mp4` -> `a/x` (players pair `x.srt` with `x.mp4`).

    Where two videos share a stem (`x.mp4` and `x.mkv` in one folder) both keep their full
    name (`x.mp4`, `x.mkv`) so that neither overwrites the other.
    """
    def stem(key: str) -> str:
        head, _, name = key.rpartition("/")
        base = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        return f"{head}/{base}" if head else base

    counts: dict[str, int] = {}
    for key in keys:
        counts[stem(key)] = counts.get(stem(key), 0) + 1
    return {key: stem(key) if counts[stem(key)] == 1 else key for key in keys}


def subtitle_path(out_dir: Path, name: str, fmt: str) -> Path:
    return out_dir / f"{name}.{fmt}"


def parse_formats(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"jsonl,srt"` / `"all"` / a list -> validated formats (jsonl always included: it is
    the job's ledger that resume reads)."""
    if value is None:
        items: list[str] = ["jsonl", "srt"]
    elif isinstance(value, str):
        items = [v.strip().lower() for v in value.split(",") if v.strip()]
    else:
        items = [str(v).strip().lower() for v in value]
    if "all" in items:
        items = list(FORMATS)
    bad = [v for v in items if v not in FORMATS]
    if bad:
        raise ValueError(f"--format {','.join(items)}: unknown format {bad[0]!r} (choose from {', '.join(FORMATS)}, or all)")
    return tuple(f for f in FORMATS if f in items or f == "jsonl")


def segment_windows(duration: float, seconds: float) -> list[tuple[float, float]]:
    """Fixed windows of `seconds` over [0, duration]; a tail under a quarter window joins the
    one before it (so float rounding never makes a 0.01 s cue)."""
    if seconds <= 0 or duration <= seconds:
        return [(0.0, float(duration))]
    windows: list[tuple[float, float]] = []
    start = 0.0
    while start < duration - 1e-6:
        end = min(start + seconds, float(duration))
        windows.append((start, end))
        start = end
    if len(windows) > 1 and windows[-1][1] - windows[-1][0] < seconds / 4:
        last = windows.pop()
        windows[-1] = (windows[-1][0], last[1])
    return [(round(s, 3), round(e, 3)) for s, e in windows]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class CaptionResult:
    """One video's outcome; `record()` is its captions.jsonl line."""

    video: str  # key: posix path relative to its input root
    path: Path
    status: str  # "ok" | "error"
    caption: str | None = None  # None for an error
    segments: list[dict[str, Any]] = field(default_factory=list)  # [{start, end, text}]
    duration: float | None = None
    frame_times: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    elapsed_s: float = 0.0
    error: str | None = None
    skipped: bool = False  # already ok from an earlier run: not captioned again

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record(self) -> dict[str, Any]:
        """Its captions.jsonl line (kvcap.records.CaptionRecord)."""
        from kvcap.records import CaptionRecord

        return CaptionRecord(
            video=self.video, status=self.status, caption=self.caption, segments=self.segments,
            duration=self.duration, frame_times=self.frame_times, checkpoint=self.checkpoint,
            elapsed_s=round(self.elapsed_s, 3), error=self.error,
        ).to_dict()

    @classmethod
    def from_record(cls, record: dict[str, Any], path: Path, skipped: bool = True) -> "CaptionResult":
        from kvcap.records import CaptionRecord

        r = CaptionRecord.from_dict(record)
        return cls(
            video=r.video, path=path, status=r.status, caption=r.caption, segments=r.segments,
            duration=r.duration, frame_times=r.frame_times, checkpoint=r.checkpoint,
            elapsed_s=float(r.elapsed_s or 0.0), error=r.error, skipped=skipped,
        )


@dataclass
class PipelineStats:
    """Where the time went (filled in by `caption_folder` when passed one)."""

    wall_s: float = 0.0
    model_s: float = 0.0  # encode + generate, main thread
    wait_s: float = 0.0  # main thread waiting for decoded frames (the decode-bound part)
    decode_s: float = 0.0  # summed over worker threads
    batches: int = 0
    items: int = 0  # clips or windows generated


def clean_text(text: str) -> str:
    """One line of printable text: whitespace runs become one space and control characters
    (NUL, escapes, ... that an untrained or odd model can emit) are dropped, because subtitle
    players, ffmpeg and line-based JSONL readers all choke on them."""
    text = "".join(ch if unicodedata.category(ch) != "Cc" or ch in "\t\n\r" else " " for ch in str(text))
    return " ".join(text.split())




# ---------------------------------------------------------------------------------------------
# Decoding ahead
# ---------------------------------------------------------------------------------------------


@dataclass
class _Work:
    """One queued unit: a window (or whole clip) of a video being decoded, or a failed probe."""

    video: VideoInput
    index: int  # window number within the video
    count: int  # windows in the video (0 when the probe failed)
    window: tuple[float, float] | None
    future: Future | None
    error: str | None = None
    duration: float | None = None


@dataclass
class _Pending:
    """A video whose windows are being captioned."""

    video: VideoInput
    count: int
    texts: dict[int, str] = field(default_factory=dict)
    windows: dict[int, tuple[float, float]] = field(default_factory=dict)
    times: dict[int, list[float]] = field(default_factory=dict)
    duration: float | None = None
    error: str | None = None
    cost_s: float = 0.0

    @property
    def complete(self) -> bool:
        return self.error is not None or len(self.texts) == self.count


def _yield_to_the_model() -> None:
    """Lower this decode thread's CPU priority (Linux: per thread; elsewhere a no-op).

    Decoding ahead is work done before it is needed; the model step is the critical path. On a
    box with few cores the scheduler should run the model first and give decoders what is left
    (when the model waits for frames, its thread sleeps and the decoders get the CPU anyway).
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


def _decode(path: Path, frames: int, size: int, backend: str, window: tuple[float, float] | SceneOptions | None):
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


class _Decoder:
    """Feeds `_Work` items in input order through a bounded queue; decoding in a thread pool."""

    def __init__(self, videos: list[VideoInput], *, frames: int, size: int, backend: str,
                 segment: float, workers: int, lookahead: int):
        self.videos = videos
        self.frames, self.size, self.backend, self.segment = frames, size, backend, segment
        self.workers = workers
        self.closed = threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, lookahead))
        from kvcap.video import threads

        threads.set_decoder_threads(threads.plan(workers)[1])  # workers x FFmpeg threads = the cores
        self.pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kvcap-decode",
                                        initializer=_yield_to_the_model) if workers > 0 else None)
        self.thread: threading.Thread | None = None

    def _submit(self, video: VideoInput, window) -> Future:
        if self.pool is not None:
            return self.pool.submit(_decode, video.path, self.frames, self.size, self.backend, window)
        future: Future = Future()  # workers=0: decode inline, on demand (see get())
        future._kvcap_args = (video.path, window)  # type: ignore[attr-defined]
        return future

    def _windows(self, video: VideoInput) -> tuple[list | None, float | None, str | None]:
        if isinstance(self.segment, SceneOptions):
            return [self.segment], None, None
        if self.segment <= 0:
            return [None], None, None
        from kvcap.video import probe

        try:
            info = probe(video.path, backend=self.backend)
        except Exception as exc:  # noqa: BLE001 - every per-file failure becomes a record
            return None, None, one_line(exc)
        duration = float(info.duration or 0.0)
        if duration <= 0:
            return None, None, f"{video.path}: unknown duration, cannot cut --segment windows"
        return segment_windows(duration, self.segment), duration, None

    def _put(self, work: _Work) -> bool:
        while not self.closed.is_set():
            try:
                self.queue.put(work, timeout=0.1)
                return True
            except queue.Full:
                continue
        if work is not None and work.future is not None:  # None: the end-of-stream mark
            work.future.cancel()
        return False

    def _produce(self) -> None:
        try:
            for video in self.videos:
                windows, duration, error = self._windows(video)
                if error is not None:
                    if not self._put(_Work(video, 0, 0, None, None, error=error)):
                        return
                    continue
                for index, window in enumerate(windows):
                    if self.closed.is_set():
                        return
                    work = _Work(video, index, len(windows), window, self._submit(video, window), duration=duration)
                    if not self._put(work):
                        return
        finally:
            self._put(None)  # type: ignore[arg-type]  # end of stream

    def start(self) -> "_Decoder":
        self.thread = threading.Thread(target=self._produce, name="kvcap-decode-feed", daemon=True)
        self.thread.start()
        return self

    def get(self, stop: threading.Event | None) -> _Work | None:
        """The next item in order (None at the end, or when `stop` is set)."""
        while True:
            if stop is not None and stop.is_set():
                return None
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                continue

    def result(self, work: _Work):
        """(sampled frames, decode seconds) of a work item; raises the decoder's error."""
        assert work.future is not None
        if self.pool is None:
            path, window = work.future._kvcap_args  # type: ignore[attr-defined]
            return _decode(path, self.frames, self.size, self.backend, window)
        return work.future.result()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(queue.Empty):  # unblock the feeder, drop decoded frames
            while True:
                item = self.queue.get_nowait()
                if item is not None and item.future is not None:
                    item.future.cancel()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def _model_context():
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


def caption_folder(
    paths: str | Path | Iterable[str | Path],
    captioner: CaptionerLike,
    out_dir: str | Path | None,
    *,
    formats: str | Sequence[str] | None = ("jsonl", "srt"),
    batch_size: int = 4,
    frames: int | None = None,
    segment: float | str = 0.0,
    shard: str | Shard | None = None,
    overwrite: bool = False,
    workers: int = 2,
    generation: Any = None,
    backend: str = "auto",
    progress: Callable[[JobProgress, CaptionResult | None], None] | None = None,
    checkpoint: str | None = None,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
    job_interval: float = 1.0,
    scene_options: SceneOptions | None = None,
    job_extra: dict[str, Any] | None = None,
    skipped: list[Path] | None = None,
) -> Iterator[CaptionResult]:
    """Caption every video under `paths`, yielding one CaptionResult per video in input order.

    With `out_dir`, writes `captions.jsonl` (or the shard's part), subtitles in `formats` and
    `job.json`, and skips videos already `ok` there (unless `overwrite`). `out_dir=None` only
    yields results (the trainer's eval). Videos already done are yielded first with
    `skipped=True`. `progress(job, result)` is called once at the start (result None) and after
    each video. Setting `stop` ends the job after the batch being generated (job.json says
    `interrupted`); so does closing the generator. `checkpoint` is recorded in each record.

    `segment`: seconds per fixed window, 0 for the whole clip, or "scenes" for one cue per
    detected shot (`scene_options` tunes the detector). `job_extra` adds keys to job.json (e.g.
    the generation settings used).
    Files under the folders that are not videos are appended to `skipped` when given; no video
    at all raises `NoVideosError` before anything is written.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    fmts = parse_formats(formats)
    shard = parse_shard(shard)
    if workers == "auto":  # sized to the cores (kvcap.video.threads)
        from kvcap.video.threads import plan

        workers = plan(workers)[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if generation is None:
        generation = {}  # nothing set: Captioner.generate falls back to the checkpoint's own settings
    frames = int(frames or captioner.frames)
    if isinstance(segment, str) and segment != SCENES:
        raise ValueError(f"segment must be a number of seconds or {SCENES!r}, got {segment!r}")
    if segment == SCENES:
        segment = scene_options or SceneOptions()
    size = int(captioner.image_size)
    stats = stats if stats is not None else PipelineStats()
    wall_start = time.perf_counter()

    skipped = skipped if skipped is not None else []
    inputs = resolve_inputs(paths, skipped)
    if not inputs:  # before any output is made: nothing may claim a job "finished"
        from kvcap.video.listing import NoVideosError

        raise NoVideosError(paths, skipped)
    names = subtitle_names([v.key for v in inputs])
    if shard is not None:
        inputs = shard.select(inputs)
    order = [v.key for v in inputs]

    out = Path(out_dir) if out_dir is not None else None
    ledger: CaptionsLedger | None = None
    job: JobFile | None = None
    previous: dict[str, dict[str, Any]] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ledger = CaptionsLedger(out / (shard.jsonl_name if shard else JSONL_NAME))
        previous = ledger.open()

    def already_done(video: VideoInput) -> bool:
        record = previous.get(video.key)
        if overwrite or record is None or record.get("status") != "ok":
            return False
        if checkpoint and record.get("checkpoint") and record.get("checkpoint") != checkpoint:
            return False  # captioned by another model: do it again with this one
        return all(subtitle_path(out, names[video.key], f).exists() for f in fmts if f in SUBTITLE_FORMATS)

    done_before = [v for v in inputs if out is not None and already_done(v)]
    skip_keys = {v.key for v in done_before}
    todo = [v for v in inputs if v.key not in skip_keys]

    counts = JobProgress(total=len(inputs), skipped=len(done_before))
    if out is not None:
        job = JobFile(
            out / (shard.job_name if shard else JOB_NAME), counts, checkpoint=checkpoint,
            inputs=[str(p) for p in paths], output=str(out), shard=str(shard) if shard else None,
            min_interval=job_interval, extra=job_extra,
        )
        job.update(force=True)
    if progress:
        progress(counts, None)

    decoder = _Decoder(todo, frames=frames, size=size, backend=backend, segment=segment, workers=workers,
                       lookahead=max(2 * batch_size, 2 * workers) if not isinstance(segment, SceneOptions)
                       else max(2, workers + 1))  # a scanned file holds all its scenes' frames
    status, error = "interrupted", None
    try:
        for video in done_before:
            result = CaptionResult.from_record(previous[video.key], video.path, skipped=True)
            if progress:
                progress(counts, result)
            yield result

        decoder.start()
        pending: list[_Pending] = []  # videos in input order, not yet written
        by_key: dict[str, _Pending] = {}
        ready: list[tuple[_Pending, int, Any]] = []  # (video, window index, frames (T, S, S, 3))

        def finish(state: _Pending) -> CaptionResult:
            if state.error is not None:
                result = CaptionResult(video=state.video.key, path=state.video.path, status="error",
                                       checkpoint=checkpoint, elapsed_s=state.cost_s, error=state.error,
                                       duration=state.duration)
            else:
                idx = sorted(state.texts)
                segments = [{"start": state.windows[i][0], "end": state.windows[i][1], "text": state.texts[i]} for i in idx]
                result = CaptionResult(
                    video=state.video.key, path=state.video.path, status="ok",
                    caption=" ".join(s["text"] for s in segments), segments=segments, duration=state.duration,
                    frame_times=[round(t, 3) for i in idx for t in state.times[i]], checkpoint=checkpoint,
                    elapsed_s=state.cost_s,
                )
            if out is not None and ledger is not None:
                _write_outputs(out, names[result.video], fmts, result)
                ledger.append(result.record())
            if result.ok:
                counts.ok += 1
            else:
                counts.failed += 1
            return result

        def flush_complete() -> Iterator[CaptionResult]:
            while pending and pending[0].complete:
                state = pending.pop(0)
                by_key.pop(state.video.key, None)
                result = finish(state)
                if job is not None:
                    job.update()
                if progress:
                    progress(counts, result)
                yield result

        def run_batch() -> None:
            import numpy as np

            batch = ready[: limit.size]
            del ready[: limit.size]
            clips = np.stack([frames_ for _, _, frames_ in batch])  # (B, T, S, S, 3) uint8
            t0 = time.perf_counter()
            with _model_context():
                # (B, T, N, D) features -> texts; halved on out-of-memory, no clip lost (autotune.BatchLimit)
                texts = limit.run(lambda part: captioner.generate(captioner.encode(part), generation), clips)
            spent = time.perf_counter() - t0
            stats.model_s += spent
            stats.batches += 1
            stats.items += len(batch)
            for (state, index, _), text in zip(batch, texts):
                state.texts[index] = clean_text(text)
                state.cost_s += spent / len(batch)

        import logging as _logging

        from kvcap.caption.autotune import BatchLimit, empty_cuda_cache

        _log = _logging.getLogger(__name__)

        limit = BatchLimit(batch_size, on_oom=empty_cuda_cache, note=lambda text: _log.warning(text))
        stream_open = True
        while stream_open or ready:
            if stop is not None and stop.is_set():
                break
            # Fill a batch from the decoder (the wait is the part decoding did not hide).
            while stream_open and len(ready) < batch_size:
                t0 = time.perf_counter()
                work = decoder.get(stop)
                stats.wait_s += time.perf_counter() - t0
                if work is None:
                    stream_open = False
                    break
                state = by_key.get(work.video.key)
                if state is None:
                    state = _Pending(video=work.video, count=work.count, duration=work.duration, error=work.error)
                    pending.append(state)
                    by_key[work.video.key] = state
                if work.future is None or state.error is not None:
                    if work.future is not None:
                        work.future.cancel()
                    continue
                t0 = time.perf_counter()
                try:
                    sampled, decode_s = decoder.result(work)
                except Exception as exc:  # noqa: BLE001 - a bad file becomes its error record
                    state.error = one_line(exc)
                    ready[:] = [r for r in ready if r[0] is not state]  # drop its other windows
                    continue
                finally:
                    stats.wait_s += time.perf_counter() - t0
                stats.decode_s += decode_s
                state.cost_s += decode_s
                if isinstance(work.window, SceneOptions):  # one decoded file -> one ready item per scene
                    from kvcap.caption.scene_segments import add_scenes

                    ready.extend(add_scenes(state, sampled))
                    continue
                if state.duration is None:
                    info = getattr(sampled, "info", None)
                    state.duration = float(info.duration) if info is not None and info.duration else None
                window = work.window
                if window is None:  # whole clip: one cue from 0 to the end
                    end = state.duration if state.duration else (max(sampled.times) if sampled.times else 0.0)
                    window = (0.0, round(float(end), 3))
                state.windows[work.index] = window
                state.times[work.index] = [float(t) for t in sampled.times]
                ready.append((state, work.index, sampled.frames))
            if stop is not None and stop.is_set():
                break
            if ready:
                run_batch()
            yield from flush_complete()
        else:
            yield from flush_complete()  # trailing error-only videos
            status = "finished"
    except GeneratorExit:
        status = "interrupted"
        raise
    except BaseException as exc:
        status, error = ("interrupted", None) if isinstance(exc, KeyboardInterrupt) else ("failed", one_line(exc))
        raise
    finally:
        decoder.close()
        stats.wall_s = time.perf_counter() - wall_start
        if ledger is not None:
            try:
                ledger.compact(order)
            finally:
                ledger.close()
        if job is not None:
            job.close(status, error)


def _write_outputs(out: Path, name: str, fmts: Sequence[str], result: CaptionResult) -> None:
    """Subtitles for an ok result (atomic writes, before its record); an error record's stale
    subtitles from an earlier run are removed so files on disk always match the ledger."""
    from kvcap.caption.writers import SUBTITLE_WRITERS, Segment

    for fmt in SUBTITLE_FORMATS:
        if fmt not in fmts:
            continue
        target = subtitle_path(out, name, fmt)
        if result.ok:
            segments = [Segment(s["start"], s["end"], s["text"]) for s in result.segments]
            SUBTITLE_WRITERS[fmt](target, segments)
        else:
            target.unlink(missing_ok=True)
