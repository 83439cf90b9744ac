"""The mode-collapse alarm: a model that says the same thing about every clip.

Raised (with one reason per rule that fired) when

- diversity (1 - self-BLEU-4) is under half the references' own diversity;
- fewer than half the captions are unique;
- against a previous score, SigLIP2 went up while diversity went down (the model found one
  caption that matches most frames reasonably, a classic collapse on contrastive metrics).
"""

from __future__ import annotations

from typing import Any

MIN_DIVERSITY_SHARE = 0.5   # of the references' diversity
MIN_UNIQUE_RATIO = 0.5


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
    before = previous_summary(previous)
    if before:
        s0, s1 = before.get("siglip"), summary.get("siglip")
        d0, d1 = before.get("diversity"), summary.get("diversity")
        if None not in (s0, s1, d0, d1) and s1 > s0 and d1 < d0:
            reasons.append(f"SigLIP2 rose {s0:.3f}->{s1:.3f} while diversity fell {d0:.3f}->{d1:.3f}")
    return reasons
