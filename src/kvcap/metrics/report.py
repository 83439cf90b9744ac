"""The score table: each metric, the seed target with pass/fail, references beside predictions.

The rows are the metric table's (kvcap.records.metrics `MetricSpec.report_rows`), in its order."""

from __future__ import annotations

from typing import Any

from kvcap.metrics.suite import ScoreReport
from kvcap.records import METRIC_SPECS, passes_target

def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def render_table(report: ScoreReport):
    """A rich Table of the report (title names the tokenizer, the clip count and unmatched ids)."""
    from rich.table import Table

    s = report.summary
    targets = s.get("targets", {})
    title = f"kvcap score: {s['n']} clips, tokenizer {s.get('tokenizer_version', s.get('tokenizer'))}"
    if s.get("siglip_model"):
        title += f", SigLIP2 {s['siglip_model']}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("predictions", justify="right")
    table.add_column("references", justify="right")
    table.add_column("target", justify="right")
    table.add_column("result")
    for name in s.get("metrics", []):  # not asked for: no row rather than a row of dashes
        spec = METRIC_SPECS.get(name)
        for row in spec.report_rows() if spec else ():
            value = s.get(row.key)
            target = targets.get(row.key) if row.key == name else None  # the metric's own row is judged
            if target is None or value is None:
                verdict = "" if value is not None or target is None else "[yellow]not computed[/]"
            else:
                verdict = "[green]pass[/]" if passes_target(value, target) else "[red]fail[/]"
            table.add_row(row.label, _fmt(value), _fmt(s.get(row.reference)) if row.reference else "",
                          f"> {target:.2f}" if target is not None else "", verdict)
    notes = []
    if s.get("collapse"):
        table.add_row("[bold red]MODE COLLAPSE[/]", "", "", "", "[bold red]ALARM[/]")
        notes += [f"[bold red]mode collapse:[/] {reason}" for reason in s["collapse_reasons"]]
    else:
        table.add_row("Mode collapse", "", "", "", "[green]no alarm[/]")
    if s.get("unmatched_predictions"):
        notes.append(f"{s['unmatched_predictions']} predictions without a reference "
                     f"(e.g. {', '.join(map(str, s['unmatched_prediction_examples']))})")
    if s.get("missing_predictions"):
        notes.append(f"{s['missing_predictions']} references without a prediction "
                     f"(e.g. {', '.join(map(str, s['missing_prediction_examples']))})")
    if s.get("siglip_skipped"):
        notes.append(f"SigLIP2 skipped {s['siglip_skipped']} clips (e.g. {s['siglip_skipped_examples'][0]})")
    if s.get("prediction_errors"):
        notes.append(f"{s['prediction_errors']} prediction records had status 'error' and were skipped")
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table

