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
Every JSON file is replaced atomically; JSONL lines are appended whole and flushed. The file
names are kvcap.records.files; the typed model of each file is in kvcap.records.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

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
