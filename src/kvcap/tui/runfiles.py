"""Follow the files `kvcap train` writes, for the TUI and `kvcap compare`; find run and job folders.

The file contracts (state.json, metrics.jsonl, samples.jsonl, summary.json) and the rules over
them (best eval, targets, liveness) are kvcap.records; this module only tails the files (with
kvcap.tui.follow's JsonlTail) and keeps what it read. Caption jobs are kvcap.tui.jobfiles.
No textual, no torch.

Missing or half-written files never raise here: a reader reports what it could read, and
`RunReader.gone` / `JobReader.gone` say when the directory itself has disappeared.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from kvcap.records import (
    EvalRow,
    PidAlive,
    RunState,
    RunSummary,
    SampleRow,
    Targets,
    TrainRow,
    compare_figures,
    files,
    pid_alive,
    read_json_object,
    select_best,
)
from kvcap.tui.follow import JsonlTail, StateFollower, file_identity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Clock = Callable[[], float]  # seconds since the epoch


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


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


class RunReader(StateFollower):
    """Follows one run directory. Call `poll()` to pick up what changed since the last call."""

    SAMPLES_KEPT = 500

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        self.state = RunState(name=self.name)
        self.has_state = False
        self.gone = False
        self.train: list[TrainRow] = []
        self._stage_start = 0  # index in `train` where the latest stage's rows begin
        self.evals: list[EvalRow] = []
        self.samples: deque[SampleRow] = deque(maxlen=self.SAMPLES_KEPT)
        self.samples_seen = 0  # total ever read (for "new since" checks)
        self.config_text: str | None = None
        self.summary: RunSummary | None = None
        self.version = 0  # bumps whenever anything readable changed
        self._metrics = JsonlTail(self.path / files.RUN_METRICS)
        self._samples = JsonlTail(self.path / files.RUN_SAMPLES)
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

    def _poll_state(self) -> bool:
        path = self.path / files.RUN_STATE
        mtime = file_identity(path)
        if mtime is None or mtime == self._state_mtime:
            return False
        data = read_json_object(path)
        if data is None:  # being replaced right now, or broken: try again next poll
            return False
        self._state_mtime = mtime
        self.state = RunState.from_dict(data, self.name)
        self.has_state = True
        return True

    def _poll_metrics(self) -> bool:
        records, restarted = self._metrics.poll()
        if restarted:
            self.train.clear()
            self.evals.clear()
            self._stage_start = 0
        for record in records:
            kind = record.get("kind")
            if kind == TrainRow.KIND:
                point = TrainRow.from_dict(record)
                if point is None:
                    continue
                if self.train and point.stage != self.train[-1].stage:
                    self._stage_start = len(self.train)
                self.train.append(point)
            elif kind == EvalRow.KIND:
                row = EvalRow.from_dict(record)
                if row is not None:
                    self.evals.append(row)
        return bool(records) or restarted

    def _poll_samples(self) -> bool:
        records, restarted = self._samples.poll()
        if restarted:
            self.samples.clear()
        for record in records:
            self.samples.append(SampleRow.from_dict(record))
        self.samples_seen += len(records)
        return bool(records) or restarted

    def _poll_small_files(self) -> bool:
        changed = False
        path = self.path / files.RUN_CONFIG
        mtime = file_identity(path)
        if mtime != self._config_mtime:
            self._config_mtime = mtime
            try:
                self.config_text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                self.config_text = None
            changed = True
        path = self.path / files.RUN_SUMMARY
        mtime = file_identity(path)
        if mtime != self._summary_mtime:
            self._summary_mtime = mtime
            data = read_json_object(path)
            self.summary = RunSummary.from_dict(data) if data is not None else None
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

    def targets(self) -> Targets:
        """The run's own score targets (its config's score.target_*), else the seed targets."""
        score = self.config().get("score")
        return Targets.from_score_config(score if isinstance(score, dict) else {})

    def current_stage_train(self) -> list[TrainRow]:
        """Train rows of the latest stage (stage 2 counts its steps from 0 again)."""
        return self.train[self._stage_start:]

    def step_rate(self, window: int = 20) -> float | None:
        """Optimizer steps per second over the last `window` timed train rows of this stage."""
        timed = [(p.step, t) for p in self.current_stage_train()[-window:] if (t := p.time_s) is not None]
        if len(timed) < 2:
            return None
        (first_step, first_time), (last_step, last_time) = timed[0], timed[-1]
        dt = last_time - first_time
        ds = last_step - first_step
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

    def best_eval(self) -> EvalRow | None:
        """The run's best eval by the rule `kvcap compare` uses (kvcap.records.select_best)."""
        return select_best(self.summary, self.state if self.has_state else None, self.evals)

    def best_meteor(self) -> float | None:
        best = self.best_eval()
        if best is not None:
            return best.meteor
        return self.state.best_value if self.state.best_metric == "meteor" else None

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
        value = projector.get("name") if isinstance(projector, dict) else None
        return value if isinstance(value, str) else ""

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
    best: dict[str, float | None]
    """The best eval's value of every registered metric (kvcap.records.metrics), in table order."""
    train_time_s: float | None
    collapse: bool
    targets: Targets
    """The run's own pass marks (its config's score.target_*)."""


def compare_row(run: RunReader) -> CompareRow:
    """The comparison figures of a run, as `kvcap compare` prints them (kvcap.records.compare_figures)."""
    f = compare_figures(run.state.name or run.name, run.summary, run.state if run.has_state else None,
                        run.evals, run._config_projector())
    return CompareRow(
        name=f.name, projector=f.projector or "", params=f.params, visual_tokens=f.visual_tokens,
        best=dict(f.metrics), train_time_s=f.train_time_s,
        collapse=bool(f.collapse), targets=run.targets(),
    )


# ---------------------------------------------------------------------------------------------
# Finding runs and jobs (a job folder: kvcap.tui.jobfiles.is_job_dir)
# ---------------------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / files.RUN_STATE).exists() or (path / files.RUN_METRICS).exists())


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
