"""The score table: each metric, the seed target with pass/fail, references beside predictions."""

from __future__ import annotations

from typing import Any

from kvcap.metrics.suite import ScoreReport
from kvcap.records import passes_target

# (summary key, label, target key or None, reference key or None)
ROWS: list[tuple[str, str, str | None, str | None]] = [
    ("meteor", "METEOR", "meteor", None),
    ("siglip", "SigLIP2 (sigmoid)", "siglip", None),
    ("siglip_cosine", "SigLIP2 cosine", None, None),
    ("diversity", "Diversity (1-selfBLEU4)", "diversity", "ref_diversity"),
    ("unique_ratio", "Unique captions", None, "ref_unique_ratio"),
    ("distinct_1", "Distinct-1", None, "ref_distinct_1"),
    ("distinct_2", "Distinct-2", None, "ref_distinct_2"),
    ("repetitive_share", "Repetitive (gzip>2.4)", None, "ref_repetitive_share"),
]


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
    for key, label, target_key, ref_key in ROWS:
        if _metric_of(key) not in s.get("metrics", []):
            continue  # not asked for: no row rather than a row of dashes
        value = s.get(key)
        target = targets.get(target_key) if target_key else None
        if target is None or value is None:
            verdict = "" if value is not None or target is None else "[yellow]not computed[/]"
        else:
            verdict = "[green]pass[/]" if passes_target(value, target) else "[red]fail[/]"
        table.add_row(label, _fmt(value), _fmt(s.get(ref_key)) if ref_key else "",
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


def _metric_of(key: str) -> str:
    """The `--metrics` name that produces summary `key`."""
    if key.startswith("siglip"):
        return "siglip"
    return "meteor" if key == "meteor" else "diversity"
