"""The metric suite: METEOR, SigLIP2 and diversity over matched predictions, plus the alarm.

:func:`score_predictions` is a plain library function over dicts (no file reading), shared by
`kvcap score` and the trainer's eval. It tokenizes every distinct text once (references through
the on-disk token cache), scores, and returns a :class:`ScoreReport`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kvcap.errors import KvcapError
from kvcap.metrics.collapse import collapse_reasons, near_copy_share
from kvcap.metrics.diversity import REPETITION_RATIO, compression_ratio, diversity_stats
from kvcap.metrics.meteor import meteor
from kvcap.metrics.tokenize import (
    TokenCache,
    TokenizeStats,
    get_tokenizer,
    tokenize_texts,
)
from kvcap.records.targets import Targets

METRICS = ("meteor", "siglip", "diversity")
EXAMPLES = 5  # unmatched ids listed by name in the report


class UnknownMetricError(KvcapError, ValueError):
    """A metric name that is not one of METRICS."""


@dataclass
class ScoreReport:
    """What `score_predictions` found: a summary dict and one dict per scored clip."""

    summary: dict[str, Any]
    per_clip: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: {"summary": {...}, "per_clip": [...]}."""
        return {"summary": self.summary, "per_clip": self.per_clip}

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (NaN never appears: missing numbers are null)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def _parse_metrics(metrics: Sequence[str] | str | None, default: Sequence[str]) -> list[str]:
    if metrics is None:
        metrics = default
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UnknownMetricError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    return [m for m in METRICS if m in metrics]  # canonical order, no repeats


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
    say = progress or (lambda message: None)
    ids = [i for i in references if i in predictions]
    tokenizer = get_tokenizer(cfg.tokenizer)

    summary = _empty_summary(ids, chosen, tokenizer, predictions, references, cfg)
    per_clip = _clip_rows(ids, predictions, references)

    if "siglip" in chosen and ids and siglip_scorer is None:
        # Load first: a missing model should fail in a second, not after minutes of tokenizing.
        from kvcap.metrics.siglip import load_siglip

        say(f"loading SigLIP2 {cfg.siglip}")
        siglip_scorer = load_siglip(cfg.siglip, device=device)

    if ids and any(m in chosen for m in ("meteor", "diversity")):
        cache = TokenCache() if token_cache is True else (token_cache or None)
        _score_tokens(summary, per_clip, ids, predictions, references, chosen, tokenizer, cache, say)

    if "siglip" in chosen and ids:
        _score_siglip(summary, per_clip, ids, predictions, cfg, videos or {}, siglip_scorer, say)

    summary["collapse_reasons"] = collapse_reasons(summary, previous)
    summary["collapse"] = bool(summary["collapse_reasons"])
    return ScoreReport(summary=summary, per_clip=per_clip)


def _empty_summary(ids, chosen, tokenizer, predictions, references, cfg) -> dict[str, Any]:
    """The summary's keys, each metric None until scored, and which ids matched."""
    unmatched_predictions = [i for i in predictions if i not in references]
    missing_predictions = [i for i in references if i not in predictions]
    return {
        "n": len(ids),
        "metrics": chosen,
        "tokenizer": tokenizer.name,
        "tokenizer_version": tokenizer.key,
        "meteor": None, "siglip": None, "siglip_cosine": None,
        "diversity": None, "ref_diversity": None,
        "unique_ratio": None, "distinct_1": None, "distinct_2": None, "repetitive_share": None,
        "ref_unique_ratio": None, "ref_distinct_1": None, "ref_distinct_2": None, "ref_repetitive_share": None,
        "near_copy_share": None,
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


def _score_tokens(summary, per_clip, ids, predictions, references, chosen, tokenizer, cache, say) -> None:
    """METEOR and diversity, over one tokenizing pass of references and predictions."""
    ref_texts = [r for i in ids for r in references[i]]
    stats = TokenizeStats()
    say(f"tokenizing {len(ref_texts) + len(ids)} texts ({tokenizer.name})")
    # One batch for everything (Kiwi's threads stay busy); references go through the cache
    # (they repeat across evals and runs), predictions change every eval and are not stored.
    pred_texts = [predictions[i] for i in ids]
    tokens = tokenize_texts(ref_texts + pred_texts, tokenizer, cache=cache, stats=stats, cacheable=ref_texts)
    summary["token_cache_hits"] = stats.cache_hits
    if "meteor" in chosen:
        for row, i in zip(per_clip, ids):
            row["meteor"] = meteor([tokens[r] for r in references[i]], tokens[predictions[i]])
        summary["meteor"] = _mean([row["meteor"] for row in per_clip])
    if "diversity" in chosen:
        texts = [predictions[i] for i in ids]
        summary.update(diversity_stats(texts, [tokens[t] for t in texts]))
        summary["near_copy_share"] = near_copy_share([tokens[t] for t in texts])
        refs_first = [references[i][0] for i in ids if references[i]]
        ref_stats = diversity_stats(refs_first, [tokens[t] for t in refs_first])
        summary["ref_diversity"] = ref_stats["diversity"]
        for key in ("unique_ratio", "distinct_1", "distinct_2", "repetitive_share"):
            summary[f"ref_{key}"] = ref_stats[key]


def _score_siglip(summary, per_clip, ids, predictions, cfg, videos, scorer, say) -> None:
    """Fill SigLIP2 numbers; clips without a readable video are counted, not fatal."""
    summary["siglip_model"] = scorer.model_id
    with_video = [(i, Path(videos[i])) for i in ids if videos.get(i) is not None]
    clip_vectors, failures = scorer.encode_videos(with_video, cfg.siglip_frames)
    failures = [f"{i}: no video path" for i in ids if videos.get(i) is None] + failures
    scored_ids = [i for i in ids if i in clip_vectors]
    say(f"SigLIP2: {len(scored_ids)} clips embedded, {len(failures)} skipped")
    scores = scorer.score_pairs([predictions[i] for i in scored_ids], [clip_vectors[i] for i in scored_ids])
    by_id = dict(zip(scored_ids, scores))
    for row in per_clip:
        score = by_id.get(row["id"])
        row["siglip"] = score.siglip if score else None
        row["siglip_cosine"] = score.cosine if score else None
        row["siglip_pieces"] = score.pieces if score else 0
    summary["siglip"] = _mean([s.siglip for s in scores])
    summary["siglip_cosine"] = _mean([s.cosine for s in scores])
    summary["siglip_skipped"] = len(failures)
    summary["siglip_skipped_examples"] = failures[:EXAMPLES]
