"""The mode-collapse alarm: a model that says the same thing about every clip.

Raised (with one reason per rule that fired) when

- diversity (1 - self-BLEU-4) is under half the references' own diversity;
- fewer than half the captions are unique;
- more than half the captions are near-copies of another caption (70% or more of their word
  pairs shared): a floor that holds whatever the references look like, so templated references
  (low diversity themselves) don't hide a model that writes one caption with a word swapped;
- against a previous score, SigLIP2 went up while diversity went down (the model found one
  caption that matches most frames reasonably, a classic collapse on contrastive metrics), each
  by at least MIN_CHANGE: equal numbers are not a change.

Calibration of the near-copy rule (kiwi tokens): the demo model on unseen synthetic clips:
2 of 40 captions have a near-copy, and 17.5% of 200 (their templated references: 20.5%, while
their diversity is only 0.04); 40 or 200 captions made from one caption by changing 1 or 3
words: every caption has one (overlap 0.74 or more).
"""

from __future__ import annotations

from typing import Any, Sequence

MIN_DIVERSITY_SHARE = 0.5   # of the references' diversity
MIN_UNIQUE_RATIO = 0.5
NEAR_COPY_OVERLAP = 0.7     # Jaccard of word-pair sets: at or above, two captions are near-copies
MAX_NEAR_COPY_SHARE = 0.5   # of captions that have a near-copy
MIN_CHANGE = 0.001          # smaller moves between two scores are not a change


def previous_summary(previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accept a whole score JSON (`{"summary": {...}}`), a bare summary, or an eval row."""
    if not previous:
        return None
    return previous.get("summary", previous) if isinstance(previous, dict) else None


def collapse_reasons(summary: dict[str, Any], previous: dict[str, Any] | None = None) -> list[str]:
    """Every alarm rule that fires for `summary` (empty list = no alarm)."""
    reasons: list[str] = []
    diversity, ref_diversity = summary.get("diversity"), summary.get("ref_diversity")
    if diversity is not None and ref_diversity is not None and diversity < MIN_DIVERSITY_SHARE * ref_diversity:
        reasons.append(f"diversity {diversity:.3f} is under half the references' {ref_diversity:.3f}")
    unique = summary.get("unique_ratio")
    if unique is not None and summary.get("n", 0) > 1 and unique < MIN_UNIQUE_RATIO:
        reasons.append(f"only {unique:.0%} of captions are unique")
    share = summary.get("near_copy_share")
    if share is not None and summary.get("n", 0) > 1 and share > MAX_NEAR_COPY_SHARE:
        reasons.append(f"{share:.0%} of captions are near-copies of another caption")
    before = previous_summary(previous)
    if before:
        s0, s1 = before.get("siglip"), summary.get("siglip")
        d0, d1 = before.get("diversity"), summary.get("diversity")
        if None not in (s0, s1, d0, d1) and s1 - s0 >= MIN_CHANGE and d0 - d1 >= MIN_CHANGE:
            reasons.append(f"SigLIP2 rose {s0:.3f}->{s1:.3f} while diversity fell {d0:.3f}->{d1:.3f}")
    return reasons


def near_copy_share(token_lists: Sequence[Sequence[str]], pool: int = 200) -> float | None:
    """Share of captions with a near-copy (word-pair Jaccard >= NEAR_COPY_OVERLAP) among the
    others of its pool (consecutive pools of `pool` captions bound the O(n^2) cost); None for < 2."""
    if len(token_lists) < 2:
        return None
    pairs = [set(zip(tokens, tokens[1:])) or {tuple(tokens)} for tokens in token_lists]
    bounds = list(range(0, len(pairs), pool)) + [len(pairs)]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 2:  # a lone last caption joins the pool before
        del bounds[-2]
    copies = 0
    for start, end in zip(bounds, bounds[1:]):
        group = pairs[start:end]
        for i, mine in enumerate(group):
            if any(len(mine & other) >= NEAR_COPY_OVERLAP * len(mine | other)
                   for j, other in enumerate(group) if j != i):
                copies += 1
    return copies / len(pairs)
