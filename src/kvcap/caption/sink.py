"""The pipeline's sink: a finished video's subtitles (atomic) and then its captions.jsonl record
(one whole flushed line), job.json's counts, and the caller's `progress(job, result)` (where
`kvcap caption` prints each video's cues or record on stdout, kvcap.caption.echo).

With no output folder (the trainer's eval) only the counts and `progress` are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from kvcap.caption.batching import Pending
from kvcap.caption.confidence import Flags, figures
from kvcap.caption.inputs import VideoInput, subtitle_path
from kvcap.caption.job import CaptionsLedger, JobFile, JobProgress
from kvcap.caption.results import CaptionResult
from kvcap.caption.subtitles import SubtitleStyle
from kvcap.fsutil import sigint_held

Progress = Callable[[JobProgress, "CaptionResult | None"], None]


def write_outputs(out: Path, name: str, fmts: Sequence[str], result: CaptionResult,
                  style: SubtitleStyle | None = None) -> int:
    """Subtitles for an ok result (atomic writes, before its record); an error record's stale
    subtitles from an earlier run are removed so files on disk always match the ledger.

    Formats whose table row says `cued` (srt, vtt) get broadcast-style cues unless
    `style.cue_style` is `segment`; txt and tsv keep one text per segment. Returns how many of
    those cues overflow (kvcap.caption.cue_timing).
    """
    from kvcap.caption.writers import Segment, write_subtitles
    from kvcap.records.formats import FORMATS, subtitle_formats

    segments = [Segment(s["start"], s["end"], s["text"]) for s in result.segments] if result.ok else []
    cued, overflow = segments, 0
    style = style or SubtitleStyle()
    if result.ok and style.cue_style == "broadcast" and any(FORMATS[f].cued for f in fmts if f in FORMATS):
        from kvcap.caption.cue_timing import broadcast_segments

        cued, overflow = broadcast_segments(segments, style, result.fps)
    for fmt in subtitle_formats():
        if fmt not in fmts:
            continue
        target = subtitle_path(out, name, fmt)
        if result.ok:
            write_subtitles(target, cued if FORMATS[fmt].cued else segments, fmt)
        else:
            target.unlink(missing_ok=True)
    return overflow


def to_result(state: Pending, checkpoint: str | None, flags: Flags | None = None) -> CaptionResult:
    """A captioned (or failed) video's result: its windows' texts joined, in window order, with
    their confidence (kvcap.caption.confidence)."""
    if state.error is not None:
        return CaptionResult(video=state.video.key, path=state.video.path, status="error", checkpoint=checkpoint,
                             elapsed_s=state.cost_s, error=state.error, duration=state.duration)
    idx = sorted(state.texts)
    segments = [{"start": state.windows[i][0], "end": state.windows[i][1], "text": state.texts[i]} for i in idx]
    caption = " ".join(s["text"] for s in segments)
    confidence = figures(segments, [state.scores.get(i) for i in idx], caption, flags or Flags())
    return CaptionResult(
        video=state.video.key, path=state.video.path, status="ok",
        caption=caption, segments=segments, duration=state.duration, fps=state.fps,
        frame_times=[round(t, 3) for i in idx for t in state.times[i]], checkpoint=checkpoint,
        elapsed_s=state.cost_s, **confidence,
    )


class CaptionSink:
    """Where results go, in input order; `close` compacts the ledger and says how the job ended."""

    def __init__(self, *, out: Path | None, ledger: CaptionsLedger | None, names: dict[str, str],
                 formats: Sequence[str], counts: JobProgress, checkpoint: str | None,
                 progress: Progress | None, job: JobFile | None, subtitles: SubtitleStyle | None = None,
                 flags: Flags | None = None):
        self.out, self.ledger, self.names, self.formats = out, ledger, names, formats
        self.counts, self.checkpoint, self.progress, self.job = counts, checkpoint, progress, job
        self.subtitles = subtitles or SubtitleStyle()
        self.flags = flags or Flags()

    @classmethod
    def open(cls, plan: Any, *, formats: Sequence[str], checkpoint: str | None, progress: Progress | None,
             inputs: list[str], job_interval: float, job_extra: dict[str, Any] | None,
             subtitles: SubtitleStyle | None = None, flags: Flags | None = None) -> "CaptionSink":
        """The sink of a planned job (kvcap.caption.plan.JobPlan): job.json written at once."""
        counts = JobProgress(total=len(plan.inputs), skipped=len(plan.done_before))
        job = None
        if plan.out is not None:
            shard = plan.shard
            job = JobFile(
                plan.out / plan.job_name, counts, checkpoint=checkpoint, inputs=inputs, output=str(plan.out),
                shard=str(shard) if shard else None, min_interval=job_interval, extra=job_extra,
            )
            job.update(force=True)
        if progress:
            progress(counts, None)
        return cls(out=plan.out, ledger=plan.ledger, names=plan.names, formats=formats, counts=counts,
                   checkpoint=checkpoint, progress=progress, job=job, subtitles=subtitles, flags=flags)

    @classmethod
    def for_job(cls, plan: Any, options: Any, paths: Sequence[Any], *, progress: Progress | None,
                job_extra: dict[str, Any] | None = None) -> "CaptionSink":
        """`open` with everything a job's CaptionOptions set (formats, checkpoint, subtitle style,
        suspect thresholds, job.json cadence and extras): how both engines open theirs. `paths`
        are the job's inputs, recorded absolute (`kvcap review` lists the videos again from them,
        from any folder); `job_extra` replaces `options.job_extra`."""
        return cls.open(plan, formats=options.formats, checkpoint=options.checkpoint, progress=progress,
                        inputs=[os.path.abspath(p) for p in paths], job_interval=options.job_interval,
                        job_extra=options.job_extra if job_extra is None else job_extra,
                        subtitles=options.subtitles, flags=options.flags)

    def skipped(self, video: VideoInput, record: dict[str, Any]) -> CaptionResult:
        """A video already done by an earlier run: its old record, passed on."""
        result = CaptionResult.from_record(record, video.path, skipped=True)
        if self.progress:
            self.progress(self.counts, result)
        return result

    def note_engine(self, engine: str | None, capture_error: str | None) -> None:
        """The engine that ran (job.json, the end-of-run summary) and why graphs did not, if so."""
        self.counts.engine = engine
        if capture_error and self.counts.engine_note is None:
            self.counts.engine_note = (f"CUDA graph capture failed ({capture_error}); "
                                       f"decoding with the static loop without graphs, which is slower")

    def put(self, state: Pending) -> CaptionResult:
        """Write a finished video and count it."""
        result = to_result(state, self.checkpoint, self.flags)
        if self.out is not None and self.ledger is not None:
            self.counts.subtitle_overflow += write_outputs(self.out, self.names[result.video], self.formats, result,
                                                           self.subtitles)
            self.ledger.append(result.record())
        if result.ok:
            self.counts.ok += 1
        else:
            self.counts.failed += 1
        if self.job is not None:
            self.job.update()
        if self.progress:
            self.progress(self.counts, result)
        return result

    def close(self, order: list[str], status: str, error: str | None) -> None:
        with sigint_held():  # a Ctrl-C now waits for the ledger and job.json's final status
            if self.ledger is not None:
                try:
                    self.ledger.compact(order)
                finally:
                    self.ledger.close()
            if self.job is not None:
                self.job.close(status, error)
