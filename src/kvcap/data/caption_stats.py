"""Caption lengths of an imported dataset, in characters and in the LLM's tokens.

The tokenizer is `model.llm`'s, loaded offline only by the caller (kvcap.model.tokenizer: a local
directory, a `tiny:` id, or a hub id already in the local Hugging Face cache); when it cannot be
loaded the stats are in characters only and `tokenizer_note` says why. `would_cut` counts the captions longer than
`train.max_caption_tokens`, which training truncates (kvcap.model.prompt.caption_target_ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Lengths:
    """Median, 95th percentile and maximum of some lengths."""

    median: float
    p95: float
    max: int

    @classmethod
    def of(cls, values: list[int]) -> "Lengths":
        if not values:
            return cls(0.0, 0.0, 0)
        arr = np.asarray(values)
        return cls(float(np.median(arr)), float(np.percentile(arr, 95)), int(arr.max()))


@dataclass
class CaptionStats:
    """Lengths of every reference caption of the import."""

    captions: int
    chars: Lengths
    tokens: Lengths | None = None  # None: no tokenizer could be loaded offline
    tokenizer: str | None = None  # the model id whose tokenizer counted
    tokenizer_note: str = ""  # why there are no token counts
    max_caption_tokens: int | None = None
    would_cut: int | None = None  # captions over max_caption_tokens


def caption_stats(
    captions: list[str], tokenizer: Any | None = None, *, model_id: str | None = None,
    max_caption_tokens: int | None = None, note: str = "",
) -> CaptionStats:
    """Stats over `captions` (every reference); token counts when `tokenizer` is given."""
    stats = CaptionStats(captions=len(captions), chars=Lengths.of([len(c) for c in captions]), tokenizer_note=note)
    if tokenizer is None:
        return stats
    counts = [len(tokenizer.encode(c, add_special_tokens=False)) for c in captions]
    stats.tokens = Lengths.of(counts)
    stats.tokenizer = model_id
    if max_caption_tokens is not None:
        stats.max_caption_tokens = int(max_caption_tokens)
        stats.would_cut = sum(1 for n in counts if n > max_caption_tokens)
    return stats
