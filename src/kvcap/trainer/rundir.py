"""The run directory: what a training run leaves for the TUI, `kvcap compare` and resume.

    runs/<name>/config.toml       resolved config (resume reads it back)
    runs/<name>/state.json        RunState: status, pid, host, stage, step, epoch, best, ... replaced atomically
    runs/<name>/metrics.jsonl     TrainRow / EvalRow, a line each, flushed
    runs/<name>/samples.jsonl     SampleRow: an eval prediction beside its reference
    runs/<name>/checkpoints/step-<N>/   resumable checkpoints of the current stage (TrainPosition inside)
    runs/<name>/best/             kvcap checkpoint, best eval of the current stage
    runs/<name>/stage1/best/      stage 1's best, moved here when stage 2 starts in the same run
    runs/<name>/stage1/checkpoints/     stage 1's resumable checkpoints (kept for the record)
    runs/<name>/predictions.jsonl the latest eval's captions, {"id", "video", "caption", "stage", "step"}
                                  (`kvcap score runs/<name>/predictions.jsonl --refs data/val.jsonl`)
    runs/<name>/summary.json      RunSummary, written at the end of each stage

Both stages of one run share the directory: rows carry their `stage`, and `best/` is always the
latest stage's best, so `kvcap caption --checkpoint runs/<name>/best` takes the finished model.

What one `kvcap train` invocation does with its run directory is decided here too, before any
model loads:

    check_run(run, stage, resume=, init=, ...) -> RunStart(previous state, init checkpoint)
    open_state(run, ...)                       -> the RunState (state.json) the recipe keeps up to date
    truncate_rows(path, stage, step)           drop rows a dead run logged after its checkpoint

Fresh runs refuse to overwrite, `--resume` needs a checkpoint of the same stage, stage 2 starts
from `--init` or from stage 1's best (moved to stage1/ first). Torch-free.
Every JSON file is replaced atomically; JSONL lines are appended whole and flushed. The file
names are kvcap.records.files; the typed model of each file is in kvcap.records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kvcap.errors import KvcapError
from kvcap.fsutil import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    repair_jsonl_tail,
)
from kvcap.records import (
    EvalRow,
    RunState,
    RunSummary,
    dumps_jsonl,
    read_json_object,
    read_jsonl,
    utc_now,
)
from kvcap.records import files
from kvcap.records.liveness import process_alive


def resolve_run_path(run: str | None, runs_dir: str | Path, default_name: str) -> Path:
    """`--run`: a name under `runs_dir`, or a directory path (anything with a slash or a dot start)."""
    if not run:
        return Path(runs_dir) / default_name
    if os.sep in run or "/" in run or run.startswith(".") or Path(run).is_absolute():
        return Path(run)
    return Path(runs_dir) / run


class RunDir:
    """Reads and writes one run directory (only the main process writes)."""

    def __init__(self, path: str | Path, *, writer: bool = True):
        self.path = Path(path)
        self.writer = writer  # False on DDP ranks other than 0: every write is a no-op
        self._metrics = None
        self._samples = None

    # paths ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / files.RUN_CONFIG

    @property
    def state_path(self) -> Path:
        return self.path / files.RUN_STATE

    @property
    def metrics_path(self) -> Path:
        return self.path / files.RUN_METRICS

    @property
    def samples_path(self) -> Path:
        return self.path / files.RUN_SAMPLES

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / files.RUN_CHECKPOINTS

    @property
    def best_dir(self) -> Path:
        return self.path / files.RUN_BEST

    @property
    def predictions_path(self) -> Path:
        return self.path / files.RUN_PREDICTIONS

    @property
    def summary_path(self) -> Path:
        return self.path / files.RUN_SUMMARY

    def stage_dir(self, stage: int) -> Path:
        """Where a finished earlier stage's `best/` and `checkpoints/` are kept."""
        return self.path / f"stage{stage}"

    # reading ----------------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any] | None:
        return read_json_object(self.state_path)

    def read_summary(self) -> dict[str, Any] | None:
        return read_json_object(self.summary_path)

    def run_state(self) -> RunState | None:
        """state.json, typed (None when absent or unreadable)."""
        data = self.read_state()
        return RunState.from_dict(data, self.name) if data is not None else None

    def run_summary(self) -> RunSummary | None:
        """summary.json, typed (None before the first stage finished)."""
        data = self.read_summary()
        return RunSummary.from_dict(data) if data is not None else None

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path) if self.metrics_path.is_file() else []

    def eval_rows(self) -> list[EvalRow]:
        """The `kind: eval` rows of metrics.jsonl, typed."""
        return [row for r in self.metrics() if r.get("kind") == "eval" and (row := EvalRow.from_dict(r)) is not None]

    # writing ----------------------------------------------------------------------------------
    def create(self) -> None:
        if self.writer:
            self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, toml_text: str) -> None:
        if self.writer:
            atomic_write_text(self.config_path, toml_text)

    def write_state(self, state: RunState | dict[str, Any]) -> None:
        """Stamp `updated` and replace state.json with `state` (atomically); a dict is read as a RunState first."""
        if self.writer:
            state = state if isinstance(state, RunState) else RunState.from_dict(state, self.name)
            state.updated = utc_now()
            atomic_write_json(self.state_path, state.to_dict())

    def new_state(self, *, stage: int, projector: str, total_steps: int, epochs: float,
                  previous: RunState | None) -> RunState:
        """A fresh state.json for a stage, carrying the earlier stage's facts along."""
        return RunState(
            name=self.name, status="running", pid=os.getpid(), host=socket.gethostname(), stage=stage,
            projector=projector, step=0, total_steps=total_steps, epoch=0, epochs=epochs, started=utc_now(),
            updated=utc_now(), error=None, best=None, stage1_best=previous.stage1_best if previous else None,
        )

    def log_metrics(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        if self._metrics is None:
            self.create()
            repair_jsonl_tail(self.metrics_path)  # a killed writer may have left half a line
            self._metrics = open(self.metrics_path, "a", encoding="utf-8")
        append_jsonl(self._metrics, record)

    def log_sample(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        if self._samples is None:
            self.create()
            repair_jsonl_tail(self.samples_path)
            self._samples = open(self.samples_path, "a", encoding="utf-8")
        append_jsonl(self._samples, record)

    def write_predictions(self, records: list[dict[str, Any]]) -> None:
        """Replace predictions.jsonl with the latest eval's captions (one atomic rename)."""
        if self.writer:
            atomic_write_text(self.predictions_path, dumps_jsonl(records))

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.writer:
            atomic_write_json(self.summary_path, summary)

    def archive_stage(self, stage: int) -> Path | None:
        """Move `best/` and `checkpoints/` of a finished `stage` to `stage<N>/`; returns its best."""
        if not self.writer:
            target = self.stage_dir(stage) / files.RUN_BEST
            return target if target.is_dir() else None
        keep = self.stage_dir(stage)
        keep.mkdir(parents=True, exist_ok=True)
        for sub in (files.RUN_BEST, files.RUN_CHECKPOINTS):
            src = self.path / sub
            if src.is_dir():
                dst = keep / sub
                if dst.exists():
                    shutil.rmtree(dst)
                os.replace(src, dst)
        best = keep / files.RUN_BEST
        return best if best.is_dir() else None

    def close(self) -> None:
        for handle in (self._metrics, self._samples):
            if handle is not None:
                handle.close()
        self._metrics = self._samples = None


class RunBusyError(KvcapError):
    """The run directory is being written by a live `kvcap train` (one line)."""


def run_status(state: RunState | dict[str, Any]) -> str:
    """state.json's status, except that a "running" run whose process on this host is gone
    (killed with -9, a crash, a reboot) reads "stopped (its process is gone)"."""
    state = state if isinstance(state, RunState) else RunState.from_dict(state)
    if state.status != "running":
        return state.status
    if state.pid > 0 and not process_alive(state.pid, state.host or None):
        return "stopped (its process is gone)"
    return state.status


def check_not_running(state: RunState | None, where: Path) -> None:
    """Refuse to touch a run that a live process on this host is still training."""
    if not state or state.status != "running" or state.pid == os.getpid():
        return
    if run_status(state) == "running" and state.host == socket.gethostname():
        raise RunBusyError(f"{where}: still being trained by pid {state.pid} on {state.host}; "
                           "wait for it, stop it, or use --run NEW")


# ---------------------------------------------------------------------------------------------
# What one invocation does with the run directory
# ---------------------------------------------------------------------------------------------


class TrainError(KvcapError, ValueError):
    """A run that cannot start or go on, for a reason the user can fix (one line)."""


@dataclass
class RunStart:
    previous: RunState | None  # the run's state.json before this invocation (status made honest)
    init_path: Path | None  # the checkpoint whose projector stage 2 starts from


def _latest(run: RunDir) -> Path | None:
    from kvcap.trainer.resume import latest_checkpoint

    return latest_checkpoint(run.checkpoints_dir)


def check_run(run: RunDir, stage: int, *, resume: bool, init, say: Callable[[str], None], main: bool,
              wait: Callable[[], None]) -> RunStart:
    """Decide what this invocation does with the run directory (raises TrainError when it cannot).

    `main`: this process writes files (moves stage 1 aside); `wait`: the barrier between ranks."""
    previous = run.run_state()
    if previous is not None:
        check_not_running(previous, run.path)
        previous = dataclasses.replace(previous, status=run_status(previous))  # a killed run is not "running"
    if resume:
        return _check_resume(run, stage, previous)
    where = run.path
    prev_stage = int(previous.stage or 0) if previous else 0
    # An attempt at this same stage that died before its first checkpoint has nothing to
    # resume: starting it again is the only way on, so allow it.
    restart = (previous is not None and prev_stage == stage and previous.status != "finished"
               and _latest(run) is None)
    if restart:
        say(f"{where}: the last stage {stage} attempt ({previous.status}) left no checkpoint; starting it again")
    elif previous is not None and stage == 1:
        raise TrainError(f"{where}: already holds a run (stage {prev_stage}, {previous.status}); "
                         "use --resume to continue it or --run NEW for another")
    elif prev_stage >= 2:
        raise TrainError(f"{where}: already holds stage 2 ({previous.status}); use --resume or --run NEW")
    if stage != 2:
        return RunStart(previous, None)
    if init is not None:
        if prev_stage == 1 and main:
            run.archive_stage(1)  # keep stage 1's best/ and checkpoints beside stage 2's
        return RunStart(previous, Path(init))
    if restart and previous.init:
        return RunStart(previous, Path(previous.init))
    return RunStart(previous, _stage1_best(run, previous, say=say, main=main, wait=wait))


def require_state(run: RunDir, previous: RunState | None = None) -> RunState:
    """The run's state.json for --resume (`previous`, when already read), or TrainError: nothing to resume."""
    previous = previous if previous is not None else run.run_state()
    if previous is None:
        raise TrainError(f"{run.path}: nothing to resume (no state.json); start it without --resume")
    return previous


def _check_resume(run: RunDir, stage: int, previous: RunState | None) -> RunStart:
    where = run.path
    previous = require_state(run, previous)
    if int(previous.stage or 0) != stage:
        raise TrainError(f"{where}: holds stage {previous.stage}, not stage {stage}; "
                         f"run `kvcap train --stage {stage} --run {run.name}` without --resume to start stage {stage}")
    if previous.status == "finished":
        raise TrainError(f"{where}: stage {stage} already finished; nothing to resume")
    if _latest(run) is None:
        raise TrainError(f"{where}: no checkpoint in {run.checkpoints_dir} yet; start again without --resume")
    return RunStart(previous, Path(previous.init) if previous.init else None)


def _stage1_best(run: RunDir, previous: RunState | None, *, say, main: bool, wait) -> Path:
    """Stage 2 after stage 1 in the same run: stage 1 moves to stage1/, its best/ is the start."""
    where = run.path
    if previous is None:
        raise TrainError(f"{where}: no stage 1 here to start stage 2 from; "
                         "run `kvcap train --stage 1` first or pass --init CHECKPOINT")
    if previous.status != "finished":
        say(f"warning: stage 1 of {where} is {previous.status}; starting from its best so far")
    if main:
        run.archive_stage(1)  # best/ -> stage1/best/, checkpoints/ -> stage1/checkpoints/
    wait()
    best = run.stage_dir(1) / "best"
    if not (best / "kvcap.json").is_file():
        raise TrainError(f"{where}: stage 1 has no best/ checkpoint yet (did its eval run?); pass --init CHECKPOINT")
    return best


def open_state(run: RunDir, *, stage: int, resume: bool, previous: RunState | None, config_toml: str,
               projector: str, total_steps: int, epochs: float, step: int, epoch: int,
               best: dict | None, world_size: int, init_path: Path | None) -> RunState:
    """Create the run directory and write its state.json (and config.toml for a fresh start);
    returns the RunState, at the position this invocation starts from (`step`)."""
    run.create()
    if run.writer:  # this stage's rows after `step` go (a restarted attempt's, or logged after a dead run's
        for path in (run.metrics_path, run.samples_path):  # last checkpoint); an earlier stage's stay
            truncate_rows(path, stage, step)
    state = run.new_state(stage=stage, projector=projector, total_steps=total_steps, epochs=epochs, previous=previous)
    if not resume:
        run.write_config(config_toml)
    if resume and previous:
        state.started = previous.started or state.started
        state.resumed = utc_now()
    state.step, state.epoch, state.best, state.world_size = step, epoch, best, world_size
    state.init = str(init_path) if init_path else None
    if stage == 2 and init_path is not None and init_path.parent.name == "stage1":
        state.stage1_best = str(init_path)
    run.write_state(state)
    return state


def truncate_rows(path: Path, stage: int, step: int) -> None:
    """Drop this stage's rows after `step` (logged by a run that died before its next checkpoint)."""
    if not path.is_file():
        return
    rows = read_jsonl(path)
    kept = [r for r in rows if not (int(r.get("stage", 0)) == stage and int(r.get("step", 0)) > step)]
    if len(kept) != len(rows) or path.read_bytes()[-1:] not in (b"\n", b""):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
