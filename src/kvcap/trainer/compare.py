"""`kvcap compare`: the projector comparison table, read from run directories.

One row per run: projector, its parameter count, visual tokens per clip, the best eval's
METEOR / SigLIP2 / Diversity, train time and the collapse flag; a run that went through both
stages also gets a row for stage 1's best (kept in `stage1/best/`), so a stage 2 that ended
worse than stage 1 shows. `summary.json` (written at the
end of each stage) is the source; a run still going (no summary yet) is read from `state.json`
and the eval rows of `metrics.jsonl`, so it can be compared while it trains.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError
from kvcap.records import Targets, compare_figures, labels, metric_names
from kvcap.trainer.rundir import RunDir
from kvcap.trainer.stage_bests import earlier_stage_bests


def columns() -> tuple[str, ...]:
    """The keys of a comparison row: one per registered metric (kvcap.records.metrics) in the middle."""
    return ("run", "projector", "params", "visual_tokens", *metric_names(), "train_time_s", "collapse", "stage", "status")


class CompareError(KvcapError, ValueError):
    """A run that cannot be compared (one line naming the directory)."""


def run_rows(path: str | Path) -> list[dict[str, Any]]:
    """The run's row (its latest stage, `best/`; figures by kvcap.records.compare_figures), then a
    row for each earlier stage's best."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise CompareError(f"{run.path}: no such run directory")
    summary, state = run.run_summary(), run.run_state()
    if summary is None and state is None:
        raise CompareError(f"{run.path}: not a run directory (no summary.json or state.json)")
    evals = run.eval_rows()
    figures = asdict(compare_figures(run.name, summary, state, evals))
    metrics = figures.pop("metrics")  # flat in the row, where each metric's key always was
    row = {"run": figures.pop("name"), "path": str(run.path), **figures, **metrics}
    row = {**{key: row[key] for key in ("run", "path", *columns()[1:])}, "checkpoint": str(run.best_dir)}
    metric = (state.best_metric if state else "") or "meteor"
    earlier = [_earlier_stage_row(row, run, stage, best, summary)
               for stage, best in earlier_stage_bests(evals, metric).items()]
    return [row, *earlier]


def _earlier_stage_row(row: dict[str, Any], run: RunDir, stage: int, best: Any, summary: Any) -> dict[str, Any]:
    """An earlier stage's best beside the run's row: its eval, its time, where its checkpoint is kept."""
    kept = run.stage_dir(stage) / "best"
    times = summary.stage_times_s if summary else {}
    return {**row, **{name: best.metric(name) for name in metric_names()},
            "train_time_s": times.get(str(stage)), "collapse": best.collapse, "stage": stage,
            "status": f"finished (kept in {kept.parent.name}/best)" if kept.is_dir() else "finished",
            "checkpoint": str(kept) if kept.is_dir() else None}


def compare_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every run's rows, in the order given: each run's latest stage, then its earlier stages' bests."""
    return [row for p in paths for row in run_rows(p)]


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def render_compare(rows: list[dict[str, Any]], targets: dict[str, float] | None = None):
    """A rich Table; metric cells are green when they pass the seed target, red when not."""
    from rich.table import Table

    marks = Targets.from_dict(targets) if targets else Targets()
    table = Table(title="projector comparison")
    for title, justify in (("run", "left"), ("projector", "left"), ("params", "right"), ("visual tokens", "right"),
                           *((label, "right") for label in labels().values()),
                           ("train time", "right"), ("collapse", "center"), ("stage", "right"), ("status", "left")):
        table.add_column(title, justify=justify)

    def metric(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        ok = marks.passes(key, value)
        return f"{value:.3f}" if ok is None else f"[{'green' if ok else 'red'}]{value:.3f}[/]"

    for row in rows:
        collapse = "-" if row["collapse"] is None else ("[bold red]YES[/]" if row["collapse"] else "no")
        table.add_row(
            row["run"], str(row["projector"] or "-"), _fmt_params(row["params"]),
            "-" if row["visual_tokens"] is None else f"{row['visual_tokens']:,}",
            *(metric(row, name) for name in metric_names()),
            _fmt_time(row["train_time_s"]), collapse, str(row["stage"] or "-"), str(row["status"] or "-"),
        )
    return table
