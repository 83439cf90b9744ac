"""`kvcap compare`: the projector comparison table, read from run directories.

One row per run: projector, its parameter count, visual tokens per clip, the best eval's
METEOR / SigLIP2 / Diversity, train time and the collapse flag. `summary.json` (written at the
end of each stage) is the source; a run still going (no summary yet) is read from `state.json`
and the eval rows of `metrics.jsonl`, so it can be compared while it trains.
"""

from __future__ import annotations

from kvcap.errors import KvcapError

from pathlib import Path
from typing import Any

from kvcap.trainer.rundir import RunDir

COLUMNS = ("run", "projector", "params", "visual_tokens", "meteor", "siglip", "diversity", "train_time_s", "collapse", "stage", "status")


class CompareError(KvcapError, ValueError):
    """A run that cannot be compared (one line naming the directory)."""


def _best_eval(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    evals = [r for r in rows if r.get("kind") == "eval"]
    if not evals:
        return None
    latest_stage = max(int(r.get("stage", 1)) for r in evals)
    evals = [r for r in evals if int(r.get("stage", 1)) == latest_stage]
    if metric == "loss":
        return min(evals, key=lambda r: r.get("loss") if r.get("loss") is not None else float("inf"))
    return max(evals, key=lambda r: r.get(metric) if r.get(metric) is not None else float("-inf"))


def run_row(path: str | Path) -> dict[str, Any]:
    """The comparison row of one run directory."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise CompareError(f"{run.path}: no such run directory")
    summary = run.read_summary()
    state = run.read_state() or {}
    if summary is None and not state:
        raise CompareError(f"{run.path}: not a run directory (no summary.json or state.json)")
    summary = summary or {}
    best = summary.get("best_eval")
    if best is None:
        metric = (state.get("best") or {}).get("metric") or "meteor"
        best = _best_eval(run.metrics(), metric) or {}
    return {
        "run": run.name,
        "path": str(run.path),
        "projector": summary.get("projector") or state.get("projector"),
        "params": summary.get("projector_params"),
        "visual_tokens": summary.get("visual_tokens"),
        "meteor": best.get("meteor"),
        "siglip": best.get("siglip"),
        "diversity": best.get("diversity"),
        "train_time_s": summary.get("train_time_s"),
        "collapse": bool(best.get("collapse")) if best else None,
        "stage": summary.get("stage", state.get("stage")),
        "status": state.get("status", summary.get("status")),
    }


def compare_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    return [run_row(p) for p in paths]


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

    targets = targets or {"meteor": 0.40, "siglip": 0.10, "diversity": 0.50}
    table = Table(title="projector comparison")
    for title, justify in (("run", "left"), ("projector", "left"), ("params", "right"), ("visual tokens", "right"),
                           ("METEOR", "right"), ("SigLIP2", "right"), ("Diversity", "right"),
                           ("train time", "right"), ("collapse", "center"), ("stage", "right"), ("status", "left")):
        table.add_column(title, justify=justify)

    def metric(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        ok = value > targets[key]
        return f"[{'green' if ok else 'red'}]{value:.3f}[/]"

    for row in rows:
        collapse = "-" if row["collapse"] is None else ("[bold red]YES[/]" if row["collapse"] else "no")
        table.add_row(
            row["run"], str(row["projector"] or "-"), _fmt_params(row["params"]),
            "-" if row["visual_tokens"] is None else f"{row['visual_tokens']:,}",
            metric(row, "meteor"), metric(row, "siglip"), metric(row, "diversity"),
            _fmt_time(row["train_time_s"]), collapse, str(row["stage"] or "-"), str(row["status"] or "-"),
        )
    return table
