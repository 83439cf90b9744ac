"""A caption job's options and its plan: which videos, which shard, which are already done.

    options = CaptionOptions(formats="jsonl,srt", segment=..., ...)   # checked on construction
    plan = plan_job(paths, out_dir, options, skipped)                 # nothing decoded yet

No video at all raises `NoVideosError` before anything is written. With an output folder, the
plan opens its captions ledger (the shard's part) and reads what an earlier run finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from kvcap.caption.inputs import VideoInput, parse_formats, resolve_inputs, subtitle_names, subtitle_path
from kvcap.caption.job import CaptionsLedger
from kvcap.caption.shard import Shard, parse_shard
from kvcap.caption.subtitles import SubtitleStyle
from kvcap.records import FLAG_COMPRESSION_ABOVE, FLAG_LOGPROB_BELOW, files
from kvcap.records.formats import DEFAULT_FORMATS, subtitle_formats
from kvcap.video.scenes import SceneOptions

SCENES = "scenes"  # `segment` value: one cue per detected shot (kvcap.caption.scene_segments)


@dataclass
class CaptionOptions:
    """How a job captions; built directly by callers, checked and normalised on construction.

    A value left at None is the captioner's own (`frames`) or nothing set (`generation`: the
    checkpoint's generation settings apply).
    """

    formats: str | Sequence[str] | None = DEFAULT_FORMATS
    """Output formats: a comma list or a sequence (`all` for every one); normalised to a tuple."""
    batch_size: int = 4
    """Clips (or windows) per generation batch (an `auto` size is resolved before, by CaptionSession)."""
    frames: int | None = None
    """Frames per clip; None = the captioner's."""
    segment: float | str | SceneOptions = 0.0
    """Seconds per fixed window, 0 for the whole clip, or `scenes` (or a SceneOptions) for one cue per shot."""
    shard: str | Shard | None = None
    """`i/n` or a Shard: caption every n-th video starting at i."""
    overwrite: bool = False
    """Caption again videos an earlier run finished."""
    workers: int | str = 2
    """Background decoding threads, or `auto` (sized to the cores, kvcap.video.threads)."""
    generation: Any = None
    """Generation settings (a GenerationConfig or a dict); None = the checkpoint's."""
    backend: str = "auto"
    """Video decoder."""
    checkpoint: str | None = None
    """Recorded in each captions.jsonl record; a record of another checkpoint is captioned again."""
    job_interval: float = 1.0
    """Seconds between job.json rewrites."""
    job_extra: dict[str, Any] | None = None
    """Keys added to job.json (e.g. the generation settings used)."""
    subtitles: Any = None
    """How srt/vtt cues are cut: a SubtitleStyle or the config's `[subtitle]` table; None =
    broadcast style with the default limits (kvcap.caption.subtitles)."""
    flag_logprob_below: float = FLAG_LOGPROB_BELOW
    """A record whose avg_logprob is below this is marked `suspect` (caption.flag_logprob_below)."""
    flag_compression_above: float = FLAG_COMPRESSION_ABOVE
    """A record whose compression ratio is above this is marked `suspect` (caption.flag_compression_above)."""

    @property
    def flags(self):
        """The `suspect` thresholds (kvcap.caption.confidence.Flags)."""
        from kvcap.caption.confidence import Flags

        return Flags(self.flag_logprob_below, self.flag_compression_above)

    def __post_init__(self) -> None:
        self.formats = parse_formats(self.formats)
        self.shard = parse_shard(self.shard)
        self.subtitles = SubtitleStyle.from_config(self.subtitles) if self.subtitles is not None else SubtitleStyle()
        if self.workers == "auto":
            from kvcap.video.threads import plan

            self.workers = plan(self.workers)[0]
        self.workers = int(self.workers)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.generation is None:
            self.generation = {}  # nothing set: Captioner.generate falls back to the checkpoint's own settings
        if isinstance(self.segment, str):
            if self.segment != SCENES:
                raise ValueError(f"segment must be a number of seconds or {SCENES!r}, got {self.segment!r}")
            self.segment = SceneOptions()

    @classmethod
    def from_config(cls, cfg: Any, **job: Any) -> "CaptionOptions":
        """The options a Config sets ([caption], [generation], video.backend, [subtitle]), for either
        engine: the local session and the Ray driver. `job` sets the job's own fields (formats,
        frames, batch size, shard, overwrite, ...) and wins over them."""
        c = cfg.caption
        segment: Any = c.segment
        if segment == SCENES:
            segment = SceneOptions(min_seconds=c.scene_min_seconds, max_seconds=c.scene_max_seconds)
        settings: dict[str, Any] = dict(
            formats=c.formats, segment=segment, workers=c.workers, generation=cfg.generation,
            backend=cfg.video.backend, checkpoint=checkpoint_id(c.checkpoint), subtitles=cfg.subtitle,
            flag_logprob_below=c.flag_logprob_below, flag_compression_above=c.flag_compression_above,
        )
        return cls(**{**settings, **job})

    def frames_for(self, captioner: Any) -> int:
        """Frames per clip for this captioner (its own when not set)."""
        return int(self.frames or captioner.frames)


def checkpoint_id(checkpoint: str) -> str:
    """What captions.jsonl records name the checkpoint by: its resolved folder (`demo` stays `demo`)."""
    path = Path(checkpoint)
    return str(path.resolve()) if path.is_dir() else checkpoint


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
        return self.shard.job_name if self.shard else files.JOB


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
        ledger = CaptionsLedger(out / (shard.jsonl_name if shard else files.CAPTIONS))
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
    return all(subtitle_path(out, names[video.key], f).exists() for f in options.formats if f in subtitle_formats())


def as_paths(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)
