"""The caption job's files: a captions.jsonl line and job.json (docs/internals.md describes the output folder).

    captions.jsonl  {"video", "status", "caption", "segments", "duration", "fps", "frame_times",
                     "checkpoint", "elapsed_s", "error", "avg_logprob", "compression_ratio",
                     "suspect"}  one line per video, appended
    job.json        {"status", "pid", "host", "checkpoint", "inputs", "output", "shard", "total",
                     "done", "ok", "failed", "skipped", "throughput", "eta_s", "started",
                     "updated", "error", "generation", "engine", "subtitle_overflow", "cluster",
                     "ray", "workers"}  replaced atomically while the job runs
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kvcap.records import _coerce as c

CAPTION_STATUSES = ("ok", "error")
JOB_STATUSES = ("running", "finished", "interrupted", "failed")
# The `suspect` marks' default thresholds (caption.flag_logprob_below / flag_compression_above),
# measured on the demo model: bench/loops.py and bench/RESULTS.md.
FLAG_LOGPROB_BELOW = -1.0
FLAG_COMPRESSION_ABOVE = 2.4


def compression_ratio(text: str) -> float:
    """UTF-8 bytes / zlib-compressed bytes (Whisper's repetition measure): the records'
    `compression_ratio`, and kvcap.metrics.diversity's repetition check."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def suspect_reason(avg_logprob: float | None, compression_ratio: float | None, *,
                   logprob_below: float = FLAG_LOGPROB_BELOW,
                   compression_above: float = FLAG_COMPRESSION_ABOVE) -> str | None:
    """Why a caption is likely wrong (whisper's two checks), or None: it repeats itself (gzip
    ratio above `compression_above`) or the model was unsure (mean log-probability below)."""
    reasons = []
    if compression_ratio is not None and compression_ratio > compression_above:
        reasons.append(f"compression_ratio {compression_ratio:.2f} > {compression_above:g}")
    if avg_logprob is not None and avg_logprob < logprob_below:
        reasons.append(f"avg_logprob {avg_logprob:.2f} < {logprob_below:g}")
    return "; ".join(reasons) or None


@dataclass
class CaptionRecord:
    """One line of `captions.jsonl`."""

    video: str
    """Path relative to its input root (POSIX separators)."""
    status: str
    """`ok` or `error`."""
    caption: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    """`[{"start", "end", "text", "avg_logprob", "compression_ratio"}]`, one per window (one for a
    whole clip); the last two as on the record, for that window's text."""
    duration: float | None = None
    fps: float | None = None
    """The clip's average frame rate (subtitle gaps are counted in its frames); None when unknown."""
    frame_times: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    elapsed_s: float | None = None
    error: str | None = None
    """One line, or None when `ok`."""
    avg_logprob: float | None = None
    """Mean log-probability of the caption's generated tokens, stop token excluded (whisper's
    `avg_logprob`; 0 is certain). None for an error or a captioner that does not report it."""
    compression_ratio: float | None = None
    """The caption's gzip compression ratio (kvcap.metrics.diversity): high = it repeats itself."""
    suspect: str | None = None
    """Why an ok caption is likely wrong (`compression_ratio 3.1 > 2.4`, `avg_logprob -1.4 < -1`),
    else None. Not a status: `status` stays ok."""

    def __post_init__(self) -> None:
        if self.status not in CAPTION_STATUSES:
            raise ValueError(f"record for {self.video}: status {self.status!r} is not one of {', '.join(CAPTION_STATUSES)}")
        if self.error is not None and "\n" in self.error:
            # The contract is one line per error; keep the first line, the rest is a traceback.
            self.error = self.error.strip().splitlines()[0] if self.error.strip() else ""
        self.segments = [s if isinstance(s, dict) else asdict(s) for s in self.segments]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaptionRecord":
        """Read a line back; raises ValueError for a line that is not a caption record
        (no `video`, or a status other than ok/error)."""
        if "video" not in data:
            raise ValueError("caption record without `video`")
        segments = data.get("segments")
        frame_times = data.get("frame_times")
        return cls(
            video=str(data["video"]), status=str(data.get("status")),
            caption=c.opt_text(data.get("caption")),
            segments=[s for s in segments if isinstance(s, dict)] if isinstance(segments, list) else [],
            duration=c.opt_num(data.get("duration")), fps=c.opt_num(data.get("fps")),
            frame_times=[t for t in frame_times if c.num(t) is not None] if isinstance(frame_times, list) else [],
            checkpoint=c.opt_text(data.get("checkpoint")), elapsed_s=c.opt_num(data.get("elapsed_s")),
            error=c.opt_text(data.get("error")), avg_logprob=c.opt_num(data.get("avg_logprob")),
            compression_ratio=c.opt_num(data.get("compression_ratio")), suspect=c.opt_text(data.get("suspect")),
        )

    @classmethod
    def check_keys(cls, data: dict[str, Any], where: object) -> None:
        """Refuse a dict with keys the contract does not have (ValueError naming them)."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{where}: unknown record key(s) {', '.join(unknown)}")


@dataclass
class JobState:
    """job.json: the live state of one caption job (or one shard of it)."""

    status: str = "unknown"
    pid: int = 0
    host: str = ""
    checkpoint: str | None = None
    inputs: list[str] = field(default_factory=list)
    """The job's PATHS made absolute (folders, files, `.zip`, `a.zip::b.mp4`, manifests): with
    the records' relative `video` keys they find each file again (`kvcap review`)."""
    output: str | None = None
    shard: str | None = None
    total: int = 0
    done: int = 0
    """Every video accounted for: ok + failed + skipped."""
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    throughput: float | None = None
    """Videos per second captioned by this run (skipped ones excluded)."""
    eta_s: float | None = None
    started: str | None = None
    """ISO-8601 UTC."""
    updated: str | None = None
    error: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    """The generation settings the job decodes with (and its prompt), when the writer gave them."""
    engine: str | None = None
    """The decode engine that ran, not the setting: `static+cudagraph`, `static` or `hf`
    (several joined by ", " when batches differed); None until the first batch."""
    subtitle_overflow: int = 0
    """SRT/VTT cues written shorter than `subtitle.min_cue_seconds` (or with more lines than
    `subtitle.max_lines`) because their segment was too short for its text; no word is dropped."""
    cluster: str = "local"
    """Where the job ran: `local` (one process) or `ray` (`kvcap caption --cluster ray`)."""
    ray: dict[str, Any] = field(default_factory=dict)
    """With `cluster = "ray"`: `address`, `started_local` (kvcap started the cluster and stops it),
    `nodes`, `cpus`, `gpus`, `startup_s` (connecting or starting the cluster)."""
    workers: list[dict[str, Any]] = field(default_factory=list)
    """With `cluster = "ray"`: one entry per captioner actor, as it reports in: `worker` (node and
    pid), `node`, `device`, `quantization` and `batch_size` it chose on its own card (`auto` is
    decided there), with the reasons, and `items` it has captioned."""

    @property
    def updated_s(self) -> float | None:
        return c.parse_time(self.updated)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobState":
        return cls(
            status=c.text(data.get("status"), "unknown"), pid=c.integer(data.get("pid")), host=c.text(data.get("host")),
            checkpoint=str(data["checkpoint"]) if data.get("checkpoint") else None,
            inputs=c.str_list(data.get("inputs")), output=c.opt_text(data.get("output")),
            shard=c.opt_text(data.get("shard")),
            total=c.integer(data.get("total")), done=c.integer(data.get("done")), ok=c.integer(data.get("ok")),
            failed=c.integer(data.get("failed")), skipped=c.integer(data.get("skipped")),
            throughput=c.opt_num(data.get("throughput")), eta_s=c.opt_num(data.get("eta_s")),
            started=c.opt_text(data.get("started")), updated=c.opt_text(data.get("updated")),
            error=c.opt_text(data.get("error")),
            generation=dict(data["generation"]) if isinstance(data.get("generation"), dict) else {},
            engine=c.opt_text(data.get("engine")),
            subtitle_overflow=c.integer(data.get("subtitle_overflow")),
            cluster=c.text(data.get("cluster"), "local"),
            ray=dict(data["ray"]) if isinstance(data.get("ray"), dict) else {},
            workers=[dict(w) for w in data["workers"] if isinstance(w, dict)] if isinstance(data.get("workers"), list) else [],
        )
