"""The compute functions the metric table (kvcap.records.metrics) names, and what they share.

Each takes a :class:`ScoreContext` and fills `ctx.summary[name]` (plus the metric's other
summary keys) and, where it has them, per-clip values in `ctx.per_clip`. The context tokenizes
every distinct text once, on first use, for all the metrics that need tokens.

A metric added to the table names its function here or anywhere else importable
(`"package.module:function"`); `resolve` imports it when scoring.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kvcap.metrics.collapse import near_copy_share
from kvcap.metrics.diversity import diversity_stats
from kvcap.metrics.meteor import meteor
from kvcap.metrics.tokenize import TokenCache, TokenizeStats, tokenize_texts

EXAMPLES = 5  # unmatched ids or skipped clips listed by name in the report


def resolve(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """A table's `"module:function"` (or a function) -> the function."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of the numbers that are there (None and NaN left out), or None."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


@dataclass
class ScoreContext:
    """What a metric's compute function reads (the matched clips, the config) and fills."""

    ids: list[str]
    """Ids with both a prediction and references, in reference order."""
    predictions: Mapping[str, str]
    references: Mapping[str, Sequence[str]]
    cfg: Any
    """A `kvcap.config.ScoreConfig`."""
    tokenizer: Any
    summary: dict[str, Any]
    per_clip: list[dict[str, Any]]
    videos: Mapping[str, Path] = field(default_factory=dict)
    token_cache: TokenCache | None = None
    siglip_scorer: Any = None
    device: str = "auto"
    say: Callable[[str], None] = lambda message: None
    _tokens: dict[str, Any] | None = None

    @property
    def tokens(self) -> dict[str, Any]:
        """Text -> tokens for every reference and prediction, tokenized once (references through
        the on-disk cache: they repeat across evals and runs; predictions change every eval)."""
        if self._tokens is None:
            ref_texts = [r for i in self.ids for r in self.references[i]]
            pred_texts = [self.predictions[i] for i in self.ids]
            stats = TokenizeStats()
            self.say(f"tokenizing {len(ref_texts) + len(pred_texts)} texts ({self.tokenizer.name})")
            # One batch for everything: Kiwi's threads stay busy.
            self._tokens = tokenize_texts(ref_texts + pred_texts, self.tokenizer, cache=self.token_cache,
                                          stats=stats, cacheable=ref_texts)
            self.summary["token_cache_hits"] = stats.cache_hits
        return self._tokens


def score_meteor(ctx: ScoreContext) -> None:
    """METEOR per clip against all its references, and their mean."""
    tokens = ctx.tokens
    for row, i in zip(ctx.per_clip, ctx.ids):
        row["meteor"] = meteor([tokens[r] for r in ctx.references[i]], tokens[ctx.predictions[i]])
    ctx.summary["meteor"] = mean([row["meteor"] for row in ctx.per_clip])


def score_diversity(ctx: ScoreContext) -> None:
    """Diversity of the predictions, beside the same figures over the first references."""
    tokens = ctx.tokens
    texts = [ctx.predictions[i] for i in ctx.ids]
    ctx.summary.update(diversity_stats(texts, [tokens[t] for t in texts]))
    ctx.summary["near_copy_share"] = near_copy_share([tokens[t] for t in texts])
    refs_first = [ctx.references[i][0] for i in ctx.ids if ctx.references[i]]
    ref_stats = diversity_stats(refs_first, [tokens[t] for t in refs_first])
    ctx.summary["ref_diversity"] = ref_stats["diversity"]
    for key in ("unique_ratio", "distinct_1", "distinct_2", "repetitive_share"):
        ctx.summary[f"ref_{key}"] = ref_stats[key]


def load_siglip_scorer(ctx: ScoreContext) -> None:
    """Load SigLIP2 before anything is scored (a missing model fails in a second, not after
    minutes of tokenizing), unless the caller passed a loaded scorer."""
    if ctx.siglip_scorer is None:
        from kvcap.metrics.siglip import load_siglip

        ctx.say(f"loading SigLIP2 {ctx.cfg.siglip}")
        ctx.siglip_scorer = load_siglip(ctx.cfg.siglip, device=ctx.device)


def score_siglip(ctx: ScoreContext) -> None:
    """SigLIP2 numbers; clips without a readable video are counted, not fatal."""
    scorer, summary = ctx.siglip_scorer, ctx.summary
    summary["siglip_model"] = scorer.model_id
    with_video = [(i, Path(ctx.videos[i])) for i in ctx.ids if ctx.videos.get(i) is not None]
    clip_vectors, failures = scorer.encode_videos(with_video, ctx.cfg.siglip_frames)
    failures = [f"{i}: no video path" for i in ctx.ids if ctx.videos.get(i) is None] + failures
    scored_ids = [i for i in ctx.ids if i in clip_vectors]
    ctx.say(f"SigLIP2: {len(scored_ids)} clips embedded, {len(failures)} skipped")
    scores = scorer.score_pairs([ctx.predictions[i] for i in scored_ids], [clip_vectors[i] for i in scored_ids])
    by_id = dict(zip(scored_ids, scores))
    for row in ctx.per_clip:
        score = by_id.get(row["id"])
        row["siglip"] = score.siglip if score else None
        row["siglip_cosine"] = score.cosine if score else None
        row["siglip_pieces"] = score.pieces if score else 0
    summary["siglip"] = mean([s.siglip for s in scores])
    summary["siglip_cosine"] = mean([s.cosine for s in scores])
    summary["siglip_skipped"] = len(failures)
    summary["siglip_skipped_examples"] = failures[:EXAMPLES]
