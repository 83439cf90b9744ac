"""What one `kvcap train` invocation does with its run directory, decided before any model loads.

    check_run(run, stage, resume=, init=, ...) -> RunStart(previous state, init checkpoint)
    open_state(run, ...)                       -> the RunState (state.json) the recipe keeps up to date
    truncate_rows(path, stage, step)           drop rows a dead run logged after its checkpoint

Fresh runs refuse to overwrite, `--resume` needs a checkpoint of the same stage, stage 2 starts
from `--init` or from stage 1's best (moved to stage1/ first). Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kvcap.errors import KvcapError
from kvcap.records import RunState, utc_now
from kvcap.trainer.rundir import RunDir, check_not_running, run_status


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


def _check_resume(run: RunDir, stage: int, previous: RunState | None) -> RunStart:
    where = run.path
    if previous is None:
        raise TrainError(f"{where}: nothing to resume (no state.json); start it without --resume")
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
    returns the RunState, at the position this invocation starts from."""
    run.create()
    if not resume:
        run.write_config(config_toml)
        if run.writer:  # a restarted attempt's rows go; an earlier stage's stay
            for path in (run.metrics_path, run.samples_path):
                truncate_rows(path, stage, 0)
    state = run.new_state(stage=stage, projector=projector, total_steps=total_steps, epochs=epochs, previous=previous)
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
    from kvcap.fsutil import atomic_write_text
    from kvcap.records import read_jsonl

    if not path.is_file():
        return
    rows = read_jsonl(path)
    kept = [r for r in rows if not (int(r.get("stage", 0)) == stage and int(r.get("step", 0)) > step)]
    if len(kept) != len(rows) or path.read_bytes()[-1:] not in (b"\n", b""):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
