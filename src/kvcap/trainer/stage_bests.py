"""Each stage's best, side by side: stage 2 can end worse than stage 1, and then someone must say so.

Both stages of a run log their evals to the same metrics.jsonl (rows carry their `stage`), stage
1's best checkpoint stays in `stage1/best/` when stage 2 starts, and `best/` is stage 2's. Stage
2 can still end worse than where it started (a too-high lr, a collapse): `best/` is then the
worse model. Nothing moves: `best/` is what stage 2 chose, and stage 1's stays where it is;
:func:`stage_regression` is the one line the end-of-stage summary prints about it, and
:func:`earlier_stage_bests` gives `kvcap compare` a row for each earlier stage's best.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from kvcap.records import EvalRow, best_eval, is_better
from kvcap.records import _coerce as c
from kvcap.records.metrics import METRIC_SPECS


def stage_evals(evals: list[EvalRow], stage: int) -> list[EvalRow]:
    """The eval rows of one stage."""
    return [e for e in evals if c.stage_number(e.stage) == stage]


def earlier_stage_bests(evals: list[EvalRow], metric: str) -> dict[int, EvalRow]:
    """{stage: its best eval by `metric`} for every stage before the latest one the rows show."""
    stages = sorted({c.stage_number(e.stage) for e in evals})
    bests = {stage: best_eval(stage_evals(evals, stage), metric) for stage in stages[:-1]}
    return {stage: row for stage, row in bests.items() if row is not None}


def stage_regression(evals: list[EvalRow], best: dict[str, Any] | None, stage: int, run_path: Path) -> str | None:
    """One line when this stage's best (`best`: {"metric", "value"}) is worse than stage 1's best
    by the same metric, saying where each is kept; None when it is not worse or cannot be told."""
    metric = best.get("metric") if best else None
    if stage < 2 or not best or best.get("value") is None or not (metric == "loss" or metric in METRIC_SPECS):
        return None
    value = float(best["value"])
    earlier = best_eval(stage_evals(evals, 1), metric)
    before = earlier.metric(metric) if earlier else None
    if before is None or not is_better(metric, before, value):
        return None
    stage1_best = Path(run_path) / "stage1" / "best"
    kept = (f"stage 1's is kept in {stage1_best} (kvcap caption --checkpoint {stage1_best})"
            if (stage1_best / "kvcap.json").is_file() else "stage 1's best/ checkpoint is not in this run")
    return (f"warning: stage {stage}'s best is worse than stage 1's ({metric} {value:.4f} at step {best.get('step')} "
            f"against {before:.4f} at stage 1 step {earlier.step}); {Path(run_path) / 'best'} holds stage {stage}'s, {kept}")


def say_if_worse_than_stage1(run: Any, best: dict[str, Any] | None, stage: int, say: Callable[[str], None]) -> None:
    """The end-of-stage line of :func:`stage_regression`, from the run directory's eval rows."""
    line = stage_regression(run.eval_rows(), best, stage, run.path)
    if line:
        say(line)
