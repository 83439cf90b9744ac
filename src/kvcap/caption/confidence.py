"""Each caption's confidence, as whisper gives per segment (issue 26): `avg_logprob` (the mean
log-probability of its generated tokens, stop token excluded), `compression_ratio` (gzip, high
when the text repeats itself) and the record's `suspect` reason when either trips its threshold
(`caption.flag_logprob_below`, `caption.flag_compression_above`; kvcap.records.suspect_reason).

A record's avg_logprob is over all its windows' tokens (each window weighted by its token count);
its compression ratio is the whole caption's. A window that trips a threshold marks the record too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvcap.records import FLAG_COMPRESSION_ABOVE, FLAG_LOGPROB_BELOW, compression_ratio, suspect_reason


@dataclass(frozen=True)
class Flags:
    """The thresholds of the `suspect` mark."""

    logprob_below: float = FLAG_LOGPROB_BELOW
    compression_above: float = FLAG_COMPRESSION_ABOVE

    def reason(self, avg_logprob: float | None, ratio: float | None) -> str | None:
        return suspect_reason(avg_logprob, ratio, logprob_below=self.logprob_below,
                              compression_above=self.compression_above)


@dataclass(frozen=True)
class Score:
    """One window's generated-token figures: their mean log-probability and how many there were."""

    avg_logprob: float | None
    tokens: int


def _ratio(text: str) -> float:
    return round(compression_ratio(text), 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def figures(segments: list[dict[str, Any]], scores: list[Score | None], caption: str, flags: Flags) -> dict[str, Any]:
    """Adds avg_logprob and compression_ratio to each segment (in place) -> the record's
    {avg_logprob, compression_ratio, suspect}."""
    reasons = []
    for number, (segment, score) in enumerate(zip(segments, scores), 1):
        segment["avg_logprob"] = _round(score.avg_logprob if score else None)
        segment["compression_ratio"] = _ratio(segment["text"])
        reason = flags.reason(segment["avg_logprob"], segment["compression_ratio"])
        if reason and len(segments) > 1:
            reasons.append(f"segment {number}: {reason}")
    counted = [s for s in scores if s is not None and s.avg_logprob is not None and s.tokens > 0]
    tokens = sum(s.tokens for s in counted)
    avg = sum(s.avg_logprob * s.tokens for s in counted) / tokens if tokens else None
    ratio = _ratio(caption)
    whole = flags.reason(_round(avg), ratio)
    return {"avg_logprob": _round(avg), "compression_ratio": ratio,
            "suspect": "; ".join(([whole] if whole else []) + reasons) or None}
