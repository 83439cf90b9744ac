"""Read the files `kvcap train` and `kvcap caption` write, into plain dataclasses.

Pure Python: no textual, no torch, so `kvcap compare` and scripts can use it too. The formats
are the contract in docs/internals.md ("Run directory" and `OUT/job.json`).

Live files are followed, not reloaded: :class:`JsonlTail` remembers the byte offset it has
read up to and, on each poll, reads only the complete lines appended since. A last line
without its newline is a write in progress: it is left for the next poll. A file that shrank
or was replaced (a compaction renames a new file over it) is read again from the start.

Missing or half-written files never raise here: a reader reports what it could read, and
`RunReader.gone` / `JobReader.gone` say when the directory itself has disappeared.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STALE_AFTER_S = 600.0
"""A run that says `running` but has not updated state.json for this long is stale."""

# The original design's seed targets (ScoreConfig.target_*): value must exceed these.
TARGETS: dict[str, float] = {"meteor": 0.40, "siglip": 0.10, "diversity": 0.50}

Clock = Callable[[], float]  # seconds since the epoch
PidAlive = Callable[[int], bool]


# ---------------------------------------------------------------------------------------------
# Small parsing helpers
# ---------------------------------------------------------------------------------------------


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string (naive = UTC) or a number; None when absent/bad."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any, default: int = 0) -> int:
    number = _num(value)
    return int(number) if number is not None else default


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a killed, unreaped one does not)."""
    from kvcap.fsutil import process_alive

    return process_alive(pid)


def read_json_file(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------
# Incremental JSONL reading
# ---------------------------------------------------------------------------------------------


class JsonlTail:
    """Follows an append-only JSONL file: each `poll()` returns only the new whole records."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0
        self._inode: int | None = None

    def reset(self) -> None:
        self.offset = 0
        self._inode = None

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """(new records, restarted): `restarted` is True when the file was replaced/shrunk and
        the records are the whole file again (callers should drop what they had)."""
        try:
            handle = open(self.path, "rb")
        except OSError:
            return [], False
        with handle:
            stat = os.fstat(handle.fileno())
            restarted = False
            if (self._inode is not None and stat.st_ino != self._inode) or stat.st_size < self.offset:
                self.offset = 0
                restarted = True
            self._inode = stat.st_ino
            if stat.st_size == self.offset:
                return [], restarted
            handle.seek(self.offset)
            data = handle.read(stat.st_size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:  # no complete line yet: wait for the writer to finish it
            return [], restarted
        self.offset += end + 1
        records: list[dict[str, Any]] = []
        for raw in data[:end].split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                self.bad_lines += 1
        return records, restarted


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass
class RunState:
    """state.json, typed. Missing keys get neutral defaults."""

    name: str
    status: str = "unknown"
    pid: int = 0
    host: str = ""
    stage: int | str = ""
    projector: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    epochs: float = 0.0
    started: float | None = None
    updated: float | None = None
    error: str | None = None
    best_metric: str = ""
    best_value: float | None = None
    best_step: int | None = None

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> "RunState":
        best = data.get("best") if isinstance(data.get("best"), dict) else {}
        stage = data.get("stage", "")
        return cls(
            name=_str(data.get("name"), name) or name,
            status=_str(data.get("status"), "unknown"),
            pid=_int(data.get("pid")),
            host=_str(data.get("host")),
            stage=stage if isinstance(stage, (int, str)) and not isinstance(stage, bool) else "",
            projector=_str(data.get("projector")),
            step=_int(data.get("step")),
            total_steps=_int(data.get("total_steps")),
            epoch=_num(data.get("epoch")) or 0.0,
            epochs=_num(data.get("epochs")) or 0.0,
            started=parse_time(data.get("started")),
            updated=parse_time(data.get("updated")),
            error=data.get("error") if isinstance(data.get("error"), str) else None,
            best_metric=_str(best.get("metric")),
            best_value=_num(best.get("value")),
            best_step=_int(best.get("step")) if best.get("step") is not None else None,
        )


@dataclass
class TrainPoint:
    """A `kind: train` row of metrics.jsonl."""

    step: int
    stage: int | str = ""
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    samples_per_s: float | None = None
    mem_mb: float | None = None
    time: float | None = None


@dataclass
class EvalRow:
    """A `kind: eval` row of metrics.jsonl."""

    step: int
    stage: int | str = ""
    epoch: float | None = None
    loss: float | None = None
    meteor: float | None = None
    siglip: float | None = None
    siglip_cosine: float | None = None
    diversity: float | None = None
    ref_diversity: float | None = None
    unique_ratio: float | None = None
    collapse: bool = False
    collapse_reasons: list[str] = field(default_factory=list)
    time: float | None = None


@dataclass
class Sample:
    """A line of samples.jsonl: one eval prediction beside its reference."""

    stage: int | str
    epoch: float | None
    step: int
    id: str
    video: str
    prediction: str
    reference: str


def _stage(value: Any) -> int | str:
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else ""


def train_point(record: dict[str, Any]) -> TrainPoint | None:
    if record.get("kind") != "train" or _num(record.get("step")) is None:
        return None
    return TrainPoint(
        step=_int(record["step"]), stage=_stage(record.get("stage")), epoch=_num(record.get("epoch")),
        loss=_num(record.get("loss")), lr=_num(record.get("lr")), grad_norm=_num(record.get("grad_norm")),
        samples_per_s=_num(record.get("samples_per_s")), mem_mb=_num(record.get("mem_mb")),
        time=parse_time(record.get("time")),
    )


def eval_row(record: dict[str, Any]) -> EvalRow | None:
    if record.get("kind") != "eval":
        return None
    reasons = record.get("collapse_reasons")
    return EvalRow(
        step=_int(record.get("step")), stage=_stage(record.get("stage")), epoch=_num(record.get("epoch")),
        loss=_num(record.get("loss")), meteor=_num(record.get("meteor")), siglip=_num(record.get("siglip")),
        siglip_cosine=_num(record.get("siglip_cosine")), diversity=_num(record.get("diversity")),
        ref_diversity=_num(record.get("ref_diversity")), unique_ratio=_num(record.get("unique_ratio")),
        collapse=record.get("collapse") is True,
        collapse_reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        time=parse_time(record.get("time")),
    )


def sample(record: dict[str, Any]) -> Sample:
    reference = record.get("reference")
    if isinstance(reference, list):  # several references: show the first
        reference = reference[0] if reference else ""
    return Sample(
        stage=_stage(record.get("stage")), epoch=_num(record.get("epoch")), step=_int(record.get("step")),
        id=str(record.get("id", "")), video=str(record.get("video", "")),
        prediction=str(record.get("prediction", "")), reference=str(reference or ""),
    )


def downsample(xs: list[float], ys: list[float], limit: int) -> tuple[list[float], list[float]]:
    """At most `limit` points: consecutive buckets averaged (keeps the curve's shape)."""
    n = len(xs)
    if n <= limit or limit <= 0:
        return list(xs), list(ys)
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(limit):
        lo, hi = b * n // limit, (b + 1) * n // limit
        if hi <= lo:
            continue
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


@dataclass
class RunRow:
    """One line of the runs table: everything derived, ready to show."""

    name: str
    path: Path
    projector: str
    stage: str
    status: str  # running | finished | failed | interrupted | stale | gone | unknown
    step: int
    total_steps: int
    eta_s: float | None
    last_loss: float | None
    best_meteor: float | None
    collapse: bool
    error: str | None


class RunReader:
    """Follows one run directory. Call `poll()` to pick up what changed since the last call."""

    SAMPLES_KEPT = 500

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        self.state = RunState(name=self.name)
        self.has_state = False
        self.gone = False
        self.train: list[TrainPoint] = []
        self._stage_start = 0  # index in `train` where the latest stage's rows begin
        self.evals: list[EvalRow] = []
        self.samples: deque[Sample] = deque(maxlen=self.SAMPLES_KEPT)
        self.samples_seen = 0  # total ever read (for "new since" checks)
        self.config_text: str | None = None
        self.summary: dict[str, Any] | None = None
        self.version = 0  # bumps whenever anything readable changed
        self._metrics = JsonlTail(self.path / "metrics.jsonl")
        self._samples = JsonlTail(self.path / "samples.jsonl")
        self._state_mtime: tuple[int, int, int] | None = None
        self._config_mtime: tuple[int, int, int] | None = None
        self._summary_mtime: tuple[int, int, int] | None = None

    # -- reading ---------------------------------------------------------------------------
    def poll(self) -> bool:
        """Read new data; True when something changed."""
        if not self.path.is_dir():
            changed = not self.gone
            self.gone = True
            if changed:
                self.version += 1
            return changed
        changed = self.gone
        self.gone = False
        changed |= self._poll_state()
        changed |= self._poll_metrics()
        changed |= self._poll_samples()
        changed |= self._poll_small_files()
        if changed:
            self.version += 1
        return changed

    @staticmethod
    def _mtime(path: Path) -> tuple[int, int, int] | None:
        """A file's identity for "has it changed": mtime, inode (atomic renames) and size."""
        try:
            stat = path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_ino, stat.st_size)

    def _poll_state(self) -> bool:
        path = self.path / "state.json"
        mtime = self._mtime(path)
        if mtime is None or mtime == self._state_mtime:
            return False
        data = read_json_file(path)
        if data is None:  # being replaced right now, or broken: try again next poll
            return False
        self._state_mtime = mtime
        self.state = RunState.from_dict(self.name, data)
        self.has_state = True
        return True

    def _poll_metrics(self) -> bool:
        records, restarted = self._metrics.poll()
        if restarted:
            self.train.clear()
            self.evals.clear()
            self._stage_start = 0
        for record in records:
            point = train_point(record)
            if point is not None:
                if self.train and point.stage != self.train[-1].stage:
                    self._stage_start = len(self.train)
                self.train.append(point)
                continue
            row = eval_row(record)
            if row is not None:
                self.evals.append(row)
        return bool(records) or restarted

    def _poll_samples(self) -> bool:
        records, restarted = self._samples.poll()
        if restarted:
            self.samples.clear()
        for record in records:
            self.samples.append(sample(record))
        self.samples_seen += len(records)
        return bool(records) or restarted

    def _poll_small_files(self) -> bool:
        changed = False
        path = self.path / "config.toml"
        mtime = self._mtime(path)
        if mtime != self._config_mtime:
            self._config_mtime = mtime
            try:
                self.config_text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                self.config_text = None
            changed = True
        path = self.path / "summary.json"
        mtime = self._mtime(path)
        if mtime != self._summary_mtime:
            self._summary_mtime = mtime
            self.summary = read_json_file(path)
            changed = True
        return changed

    # -- derived ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The resolved config as a dict ({} when absent or unparsable)."""
        if not self.config_text:
            return {}
        try:
            return tomllib.loads(self.config_text)
        except tomllib.TOMLDecodeError:
            return {}

    def targets(self) -> dict[str, float]:
        """The run's own score targets (its config's score.target_*), else the seed targets."""
        score = self.config().get("score")
        score = score if isinstance(score, dict) else {}
        return {m: _num(score.get(f"target_{m}")) if _num(score.get(f"target_{m}")) is not None else v
                for m, v in TARGETS.items()}

    def status(self, now: float, alive: PidAlive = pid_alive, host: str | None = None) -> str:
        """The status to show: state.json's, or `stale` when it claims running but its
        process is gone (same host) or it stopped updating; `gone` when deleted."""
        if self.gone:
            return "gone"
        state = self.state
        if not self.has_state:
            return "unknown"
        if state.status != "running":
            return state.status
        this_host = host if host is not None else socket.gethostname()
        if state.pid and (not state.host or state.host == this_host) and not alive(state.pid):
            return "stale"
        if state.updated is not None and now - state.updated > STALE_AFTER_S:
            return "stale"
        return "running"

    def current_stage_train(self) -> list[TrainPoint]:
        """Train rows of the latest stage (stage 2 counts its steps from 0 again)."""
        return self.train[self._stage_start:]

    def step_rate(self, window: int = 20) -> float | None:
        """Optimizer steps per second over the last `window` timed train rows of this stage."""
        timed = [p for p in self.current_stage_train()[-window:] if p.time is not None]
        if len(timed) < 2:
            return None
        first, last = timed[0], timed[-1]
        dt = last.time - first.time  # type: ignore[operator]
        ds = last.step - first.step
        if dt <= 0 or ds <= 0:
            return None
        return ds / dt

    def eta_s(self) -> float | None:
        state = self.state
        if state.status != "running" or not state.total_steps:
            return None
        left = state.total_steps - state.step
        if left <= 0:
            return 0.0
        rate = self.step_rate()
        return left / rate if rate else None

    def last_loss(self) -> float | None:
        for point in reversed(self.train):
            if point.loss is not None:
                return point.loss
        return None

    def best_meteor(self) -> float | None:
        values = [e.meteor for e in self.evals if e.meteor is not None]
        if values:
            return max(values)
        if self.state.best_metric == "meteor":
            return self.state.best_value
        return None

    def collapsed(self) -> bool:
        """The latest eval raised the mode-collapse alarm."""
        return bool(self.evals) and self.evals[-1].collapse

    def row(self, now: float, alive: PidAlive = pid_alive) -> RunRow:
        state = self.state
        return RunRow(
            name=state.name or self.name, path=self.path, projector=state.projector or self._config_projector(),
            stage=str(state.stage), status=self.status(now, alive), step=state.step,
            total_steps=state.total_steps, eta_s=self.eta_s(), last_loss=self.last_loss(),
            best_meteor=self.best_meteor(), collapse=self.collapsed(), error=state.error,
        )

    def _config_projector(self) -> str:
        projector = self.config().get("projector")
        return _str(projector.get("name")) if isinstance(projector, dict) else ""

    def curve(self, attr: str, limit: int = 400) -> tuple[list[float], list[float]]:
        """(steps, values) of a train metric in the current stage, at most `limit` points."""
        points = [p for p in self.current_stage_train() if getattr(p, attr) is not None]
        return downsample([float(p.step) for p in points], [float(getattr(p, attr)) for p in points], limit)


# ---------------------------------------------------------------------------------------------
# The `kvcap compare` table
# ---------------------------------------------------------------------------------------------


@dataclass
class CompareRow:
    """One projector run in the comparison table (None = not known, shown as –)."""

    name: str
    projector: str
    params: int | None
    visual_tokens: int | None
    best_meteor: float | None
    best_siglip: float | None
    best_diversity: float | None
    train_time_s: float | None
    collapse: bool


def _stage_number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def best_eval(evals: list[EvalRow], metric: str = "meteor") -> EvalRow | None:
    """The best eval of the latest stage by `metric` (lowest for `loss`), as `kvcap compare` picks it."""
    if not evals:
        return None
    latest = max(_stage_number(e.stage) for e in evals)
    rows = [e for e in evals if _stage_number(e.stage) == latest]
    if metric == "loss":
        return min(rows, key=lambda e: e.loss if e.loss is not None else math.inf)
    return max(rows, key=lambda e: getattr(e, metric, None) if getattr(e, metric, None) is not None else -math.inf)


def compare_row(run: RunReader) -> CompareRow:
    """The comparison figures of a run, with the semantics of `kvcap compare`
    (kvcap.trainer.compare): sizes and time from summary.json; metrics and the collapse flag
    from the best eval (summary's `best_eval`, else the best eval of the latest stage so far)."""
    summary = run.summary or {}
    best = summary.get("best_eval") if isinstance(summary.get("best_eval"), dict) else None
    if best is not None:
        row = eval_row(dict(best, kind="eval"))
    else:
        row = best_eval(run.evals, run.state.best_metric or "meteor")
    params = _num(summary.get("projector_params"))
    tokens = _num(summary.get("visual_tokens"))
    projector = _str(summary.get("projector")) or run.state.projector or run._config_projector()
    return CompareRow(
        name=run.state.name or run.name, projector=projector,
        params=int(params) if params is not None else None,
        visual_tokens=int(tokens) if tokens is not None else None,
        best_meteor=row.meteor if row else None, best_siglip=row.siglip if row else None,
        best_diversity=row.diversity if row else None, train_time_s=_num(summary.get("train_time_s")),
        collapse=bool(row and row.collapse),
    )


# ---------------------------------------------------------------------------------------------
# Caption jobs
# ---------------------------------------------------------------------------------------------


@dataclass
class JobState:
    """job.json, typed."""

    status: str = "unknown"
    pid: int = 0
    host: str = ""
    checkpoint: str = ""
    inputs: list[str] = field(default_factory=list)
    total: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    throughput: float | None = None
    eta_s: float | None = None
    started: float | None = None
    updated: float | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobState":
        inputs = data.get("inputs")
        return cls(
            status=_str(data.get("status"), "unknown"), pid=_int(data.get("pid")), host=_str(data.get("host")),
            checkpoint=str(data.get("checkpoint") or ""),
            inputs=[str(i) for i in inputs] if isinstance(inputs, list) else [],
            total=_int(data.get("total")), done=_int(data.get("done")), ok=_int(data.get("ok")),
            failed=_int(data.get("failed")), skipped=_int(data.get("skipped")),
            throughput=_num(data.get("throughput")), eta_s=_num(data.get("eta_s")),
            started=parse_time(data.get("started")), updated=parse_time(data.get("updated")),
            error=data.get("error") if isinstance(data.get("error"), str) else None,
        )


@dataclass
class CaptionRecord:
    """A line of captions.jsonl."""

    video: str
    status: str
    caption: str
    error: str | None
    elapsed_s: float | None


class JobReader:
    """Follows one caption output folder (job.json + captions.jsonl)."""

    LATEST_KEPT = 200

    def __init__(self, path: str | Path, part: str | None = None):
        """`part` follows one shard of a sharded job, e.g. "shard-0-of-3" for
        `job.shard-0-of-3.json` + `captions.shard-0-of-3.jsonl`."""
        self.path = Path(path)
        self.name = f"{self.path.name} [{part}]" if part else self.path.name
        self._state_name = f"job.{part}.json" if part else "job.json"
        self.state = JobState()
        self.has_state = False
        self.gone = False
        self.latest: deque[CaptionRecord] = deque(maxlen=self.LATEST_KEPT)
        self.failures: dict[str, CaptionRecord] = {}  # video -> its latest error record
        self.version = 0
        self._captions = JsonlTail(self.path / (f"captions.{part}.jsonl" if part else "captions.jsonl"))
        self._state_mtime: tuple[int, int, int] | None = None

    def poll(self) -> bool:
        if not self.path.is_dir():
            changed = not self.gone
            self.gone = True
            self.version += changed
            return changed
        changed = self.gone
        self.gone = False
        path = self.path / self._state_name
        mtime = RunReader._mtime(path)
        if mtime is not None and mtime != self._state_mtime:
            data = read_json_file(path)
            if data is not None:
                self._state_mtime = mtime
                self.state = JobState.from_dict(data)
                self.has_state = True
                changed = True
        records, restarted = self._captions.poll()
        if restarted:
            self.latest.clear()
            self.failures.clear()
        for record in records:
            item = CaptionRecord(
                video=str(record.get("video", "")), status=_str(record.get("status"), "?"),
                caption=str(record.get("caption") or ""),
                error=record.get("error") if isinstance(record.get("error"), str) else None,
                elapsed_s=_num(record.get("elapsed_s")),
            )
            if item.status == "error":
                self.failures[item.video] = item
            else:
                self.failures.pop(item.video, None)  # a rerun fixed it
                self.latest.append(item)
        changed |= bool(records) or restarted
        if changed:
            self.version += 1
        return changed

    def status(self, now: float, alive: PidAlive = pid_alive, host: str | None = None) -> str:
        if self.gone:
            return "gone"
        if not self.has_state:
            return "unknown"
        state = self.state
        if state.status != "running":
            return state.status
        this_host = host if host is not None else socket.gethostname()
        if state.pid and (not state.host or state.host == this_host) and not alive(state.pid):
            return "stale"
        if state.updated is not None and now - state.updated > STALE_AFTER_S:
            return "stale"
        return "running"


# ---------------------------------------------------------------------------------------------
# Finding runs and jobs
# ---------------------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "state.json").exists() or (path / "metrics.jsonl").exists())


def is_job_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "job.json").exists() or (path / "captions.jsonl").exists() or any(path.glob("job.shard-*.json"))
    )


def job_parts(path: Path) -> list[str | None]:
    """The jobs one output folder holds: None for an unsharded job, "shard-i-of-n" per shard."""
    shards = sorted(p.name[len("job."):-len(".json")] for p in path.glob("job.shard-*.json"))
    parts: list[str | None] = []
    # captions.jsonl beside shard jobs is their `caption merge` output, not a job of its own
    if (path / "job.json").exists() or ((path / "captions.jsonl").exists() and not shards):
        parts.append(None)
    return parts + shards


def discover(paths: Iterable[str | Path], is_match: Callable[[Path], bool]) -> list[Path]:
    """Each path is a matching dir itself, or a folder whose direct children are scanned."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_match(path):
            found.append(path)
        elif path.is_dir():
            try:
                children = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            except OSError:
                continue
            found.extend(p for p in children if is_match(p))
    seen: set[Path] = set()
    unique = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique
