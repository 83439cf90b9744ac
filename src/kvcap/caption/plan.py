"""A caption job's options and its plan: which videos, which shard, which are already done.

    options = CaptionOptions.build(captioner, formats=..., segment=..., ...)   # checked values
    plan = plan_job(paths, out_dir, options, skipped)                          # nothing decoded yet

No video at all raises `NoVideosError` before anything is written. With an output folder, the
plan opens its captions ledger (the shard's part) and reads what an earlier run finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from kvcap.caption.inputs import SUBTITLE_FORMATS, VideoInput, parse_formats, resolve_inputs, subtitle_names, subtitle_path
from kvcap.caption.job import CaptionsLedger
from kvcap.caption.shard import JOB_NAME, JSONL_NAME, Shard, parse_shard
from kvcap.caption.subtitles import SubtitleStyle
from kvcap.video.scenes import SceneOptions

SCENES = "scenes"  # `segment` value: one cue per detected shot (kvcap.caption.scene_segments)


@dataclass
class CaptionOptions:
    """How a job captions (see `caption_folder` for each one's meaning); `build` checks them."""

    frames: int
    size: int  # the captioner's image size (S)
    formats: tuple[str, ...] = ("jsonl", "srt")
    batch_size: int = 4
    segment: float | SceneOptions = 0.0
    shard: Shard | None = None
    overwrite: bool = False
    workers: int = 2
    generation: Any = field(default_factory=dict)
    backend: str = "auto"
    checkpoint: str | None = None
    job_interval: float = 1.0
    job_extra: dict[str, Any] | None = None
    subtitles: SubtitleStyle = field(default_factory=SubtitleStyle)  # how srt/vtt cues are cut

    @classmethod
    def build(cls, captioner: Any, *, formats: str | Sequence[str] | None, batch_size: int, frames: int | None,
              segment: float | str, shard: str | Shard | None, workers: int | str, generation: Any,
              scene_options: SceneOptions | None, subtitles: Any = None,
              **rest: Any) -> "CaptionOptions":
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
        return cls(frames=frames, size=int(captioner.image_size), formats=fmts, batch_size=batch_size,
                   segment=segment, shard=shard, workers=int(workers), generation=generation,
                   subtitles=SubtitleStyle.from_config(subtitles) if subtitles is not None else SubtitleStyle(), **rest)


@dataclass
class JobPlan:
    """The videos of a job, in input order, split into those to caption and those already done."""

    inputs: list[VideoInput]  # this shard's videos
    names: dict[str, str]  # key -> subtitle stem (over all the videos, so shards agree)
    todo: list[VideoInput]
    done_before: list[VideoInput]
    previous: dict[str, dict[str, Any]]  # key -> the ledger's latest record
    out: Path | None
    ledger: CaptionsLedger | None
    shard: Shard | None

    @property
    def order(self) -> list[str]:
        return [v.key for v in self.inputs]

    @property
    def job_name(self) -> str:
        return self.shard.job_name if self.shard else JOB_NAME


def plan_job(paths: list[str | Path], out_dir: str | Path | None, options: CaptionOptions,
             skipped: list[Path]) -> JobPlan:
    """List, name and shard the videos; open the ledger; find the ones an earlier run finished."""
    inputs = resolve_inputs(paths, skipped)
    if not inputs:  # before any output is made: nothing may claim a job "finished"
        from kvcap.video.listing import NoVideosError

        raise NoVideosError(paths, skipped)
    names = subtitle_names([v.key for v in inputs])
    shard = options.shard
    if shard is not None:
        inputs = shard.select(inputs)
    out = Path(out_dir) if out_dir is not None else None
    ledger: CaptionsLedger | None = None
    previous: dict[str, dict[str, Any]] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ledger = CaptionsLedger(out / (shard.jsonl_name if shard else JSONL_NAME))
        previous = ledger.open()
    done_before = [v for v in inputs if out is not None and _already_done(v, previous, out, names, options)]
    skip_keys = {v.key for v in done_before}
    return JobPlan(inputs=inputs, names=names, todo=[v for v in inputs if v.key not in skip_keys],
                   done_before=done_before, previous=previous, out=out, ledger=ledger, shard=shard)


def _already_done(video: VideoInput, previous: dict[str, dict[str, Any]], out: Path, names: dict[str, str],
                  options: CaptionOptions) -> bool:
    record = previous.get(video.key)
    if options.overwrite or record is None or record.get("status") != "ok":
        return False
    checkpoint = options.checkpoint
    if checkpoint and record.get("checkpoint") and record.get("checkpoint") != checkpoint:
        return False  # captioned by another model: do it again with this one
    return all(subtitle_path(out, names[video.key], f).exists() for f in options.formats if f in SUBTITLE_FORMATS)


def as_paths(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)
