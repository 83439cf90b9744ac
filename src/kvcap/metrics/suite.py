"""The metric suite: every metric of the table (kvcap.records.metrics: METEOR, SigLIP2,
diversity, and any registered later) over matched predictions, plus the alarm.

:func:`score_predictions` is a plain library function over dicts (no file reading), shared by
`kvcap score` and the trainer's eval. It runs each chosen metric's `prepare` (load models
first), then its compute function (kvcap.metrics.compute), and returns a :class:`ScoreReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kvcap.errors import KvcapError
from kvcap.metrics.collapse import collapse_reasons
from kvcap.metrics.compute import EXAMPLES, ScoreContext, resolve
from kvcap.metrics.diversity import REPETITION_RATIO
from kvcap.metrics.tokenize import TokenCache, get_tokenizer
from kvcap.records import compression_ratio
from kvcap.records.metrics import METRIC_SPECS, metric_names
from kvcap.records.targets import Targets

class UnknownMetricError(KvcapError, ValueError):
    """A metric name that is not in the metric table."""


@dataclass
class ScoreReport:
    """What `score_predictions` found: a summary dict and one dict per scored clip."""

    summary: dict[str, Any]
    per_clip: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: {"summary": {...}, "per_clip": [...]}."""
        return {"summary": self.summary, "per_clip": self.per_clip}


def _parse_metrics(metrics: Sequence[str] | str | None, default: Sequence[str]) -> list[str]:
    if metrics is None:
        metrics = default
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    known = metric_names()
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise UnknownMetricError(f"unknown metric {unknown[0]!r}; choose from {', '.join(known)}")
    return [m for m in known if m in metrics]  # table order, no repeats


def score_predictions(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    cfg,
    videos: Mapping[str, Path] | None = None,
    metrics: Sequence[str] | str | None = None,
    previous: dict[str, Any] | None = None,
    *,
    token_cache: TokenCache | bool | None = True,
    siglip_scorer=None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> ScoreReport:
    """Score predictions (id -> caption) against references (id -> captions).

    `cfg` is a `kvcap.config.ScoreConfig` (tokenizer, SigLIP2 model and frames, targets).
    `videos` (id -> clip path) is needed for SigLIP2; `previous` is an earlier report (its
    `to_dict()` or its summary) for the "SigLIP2 up, diversity down" collapse rule.
    `token_cache`: True = the default cache under $KVCAP_HOME, a TokenCache, or None/False.
    `siglip_scorer`: an already loaded `SiglipScorer` (the trainer keeps one between evals);
    otherwise `cfg.siglip` is loaded, raising `SiglipUnavailable` when it cannot be.
    Ids present on one side only are counted and named in the summary, never an error.
    """
    chosen = _parse_metrics(metrics, cfg.metrics)
    ids = [i for i in references if i in predictions]
    tokenizer = get_tokenizer(cfg.tokenizer)
    summary = _empty_summary(ids, chosen, tokenizer, predictions, references, cfg)
    ctx = ScoreContext(
        ids=ids, predictions=predictions, references=references, cfg=cfg, tokenizer=tokenizer,
        summary=summary, per_clip=_clip_rows(ids, predictions, references), videos=videos or {},
        token_cache=TokenCache() if token_cache is True else (token_cache or None),
        siglip_scorer=siglip_scorer, device=device, say=progress or (lambda message: None),
    )
    specs = [METRIC_SPECS[m] for m in chosen] if ids else []
    for spec in specs:  # models load before anything is scored: a missing one fails fast
        if spec.prepare is not None:
            resolve(spec.prepare)(ctx)
    for spec in specs:
        resolve(spec.compute)(ctx)
    summary["collapse_reasons"] = collapse_reasons(summary, previous)
    summary["collapse"] = bool(summary["collapse_reasons"])
    return ScoreReport(summary=summary, per_clip=ctx.per_clip)


def _empty_summary(ids, chosen, tokenizer, predictions, references, cfg) -> dict[str, Any]:
    """The summary's keys, each metric None until scored, and which ids matched."""
    unmatched_predictions = [i for i in predictions if i not in references]
    missing_predictions = [i for i in references if i not in predictions]
    return {
        "n": len(ids),
        "metrics": chosen,
        "tokenizer": tokenizer.name,
        "tokenizer_version": tokenizer.key,
        # Every registered metric and the other keys it fills: None until scored.
        **{key: None for spec in METRIC_SPECS.values() for key in (spec.name, *spec.summary_keys)},
        "predictions": len(predictions),
        "references": len(references),
        "unmatched_predictions": len(unmatched_predictions),
        "unmatched_prediction_examples": unmatched_predictions[:EXAMPLES],
        "missing_predictions": len(missing_predictions),
        "missing_prediction_examples": missing_predictions[:EXAMPLES],
        "targets": Targets.from_score_config(cfg).to_dict(),
    }


def _clip_rows(ids, predictions, references) -> list[dict[str, Any]]:
    """One per-clip row per matched id: prediction, first reference, repetition check."""
    per_clip: list[dict[str, Any]] = [
        {"id": i, "prediction": predictions[i], "reference": list(references[i])[0] if references[i] else None}
        for i in ids
    ]
    for row in per_clip:
        row["compression_ratio"] = round(compression_ratio(row["prediction"]), 4)
        row["repetitive"] = row["compression_ratio"] > REPETITION_RATIO
    return per_clip
