"""The scored metrics: ONE table, keyed by the name users type in `--metrics`.

Each row says everything the rest of kvcap needs: the label, the seed target (a value passes
when strictly above it: `passes_target`), which way is better, whether it needs torch, and the
function that computes it. The suite, the targets, the eval rows of a run, `--metrics`' choices,
the score table, the TUI and the model card all read this table; adding a metric is one row
here plus its compute function in kvcap.metrics.

Rows name their compute function as `"module:function"`, resolved by kvcap.metrics when it
scores, so this low module (config reads it) never imports what sits above it. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class ReportRow:
    """A line of the score table: a summary key, its label, and the references' own value."""

    key: str
    label: str
    reference: str | None = None
    """Summary key of the same figure over the references (shown beside the predictions)."""


@dataclass(frozen=True)
class MetricSpec:
    """One `--metrics` choice."""

    name: str
    """What users type, the summary key and the eval row key of its value."""
    label: str
    """Short name: TUI columns, the model card, the targets line."""
    target: float | None
    """Seed pass mark: the value must be strictly above it (None: reported, never judged)."""
    compute: str | Callable[..., Any]
    """`"module:function"` (or the function) taking a kvcap.metrics.compute.ScoreContext and
    filling its summary (and per-clip rows)."""
    higher_is_better: bool = True
    needs_torch: bool = False
    """Scoring loads a torch model (the default suite skips it with a note when it cannot)."""
    prepare: str | Callable[..., Any] | None = None
    """Run before any metric is computed (load a model first: a missing one fails in a second)."""
    about: str = ""
    """What the number is (docs, `config show` of `score.target_<name>`)."""
    rows: tuple[ReportRow, ...] = ()
    """The score table's rows; empty = one row, (name, label)."""
    summary_keys: tuple[str, ...] = ()
    """Other summary keys the compute function fills (each None until scored)."""

    def report_rows(self) -> tuple[ReportRow, ...]:
        return self.rows or (ReportRow(self.name, self.label),)


_SUITE = "kvcap.metrics.compute"

METRIC_SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "meteor", "METEOR", 0.40, f"{_SUITE}:score_meteor",
            about="METEOR on morphemes against the references",
        ),
        MetricSpec(
            "siglip", "SigLIP2", 0.10, f"{_SUITE}:score_siglip", needs_torch=True,
            prepare=f"{_SUITE}:load_siglip_scorer",
            about="SigLIP2 score of caption against clip",
            rows=(ReportRow("siglip", "SigLIP2 (sigmoid)"), ReportRow("siglip_cosine", "SigLIP2 cosine")),
            summary_keys=("siglip_cosine",),
        ),
        MetricSpec(
            "diversity", "Diversity", 0.50, f"{_SUITE}:score_diversity",
            about="diversity (1 - self-BLEU-4)",
            rows=(
                ReportRow("diversity", "Diversity (1-selfBLEU4)", "ref_diversity"),
                ReportRow("unique_ratio", "Unique captions", "ref_unique_ratio"),
                ReportRow("distinct_1", "Distinct-1", "ref_distinct_1"),
                ReportRow("distinct_2", "Distinct-2", "ref_distinct_2"),
                ReportRow("repetitive_share", "Repetitive (gzip>2.4)", "ref_repetitive_share"),
            ),
            summary_keys=("ref_diversity", "unique_ratio", "distinct_1", "distinct_2", "repetitive_share",
                          "ref_unique_ratio", "ref_distinct_1", "ref_distinct_2", "ref_repetitive_share",
                          "near_copy_share"),
        ),
    )
}
"""Name -> metric, in table order (the order of the score table, the TUI and the card)."""


def metric_names() -> tuple[str, ...]:
    """Every registered metric, in table order (`--metrics`' choices, the default suite)."""
    return tuple(METRIC_SPECS)


def metric_spec(name: str) -> MetricSpec:
    return METRIC_SPECS[name]


def labels() -> dict[str, str]:
    """Name -> short label, in table order."""
    return {name: spec.label for name, spec in METRIC_SPECS.items()}


def seed_target(name: str) -> float:
    """The seed pass mark of metric `name` (the default of `score.target_<name>`)."""
    target = METRIC_SPECS[name].target
    if target is None:
        raise KeyError(f"metric {name!r} has no target")
    return target


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add (or replace) a metric at the end of the table; returns it."""
    if not spec.name.isidentifier() or spec.name == "loss":
        raise ValueError(f"metric name {spec.name!r}: must be a word other than `loss`")
    METRIC_SPECS[spec.name] = spec
    return spec


def unregister_metric(name: str) -> None:
    """Remove a metric added by `register_metric`."""
    METRIC_SPECS.pop(name, None)
