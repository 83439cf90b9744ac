"""METEOR with nltk's formula and parameters, on pre-tokenized text, exact matches only.

nltk's `meteor_score` aligns in three stages (exact, Porter stem, WordNet synonym). For Korean
morphemes only the exact stage means anything: Porter stemming is an English rule set, and
WordNet is English (and needs a corpus download). :func:`nltk_meteor` calls nltk with both
neutralised (an identity stemmer and a WordNet stub whose `synsets()` is empty), and
:func:`meteor` is the same computation written directly, which a test proves equal to it to
1e-9: after the exact stage every unmatched hypothesis word has no equal word left in the
reference, so the identity-stem and empty-synonym stages can add no match.

We keep nltk's own details on purpose: `str.lower` preprocessing, the alignment that walks the
hypothesis from its end and takes each word's last free occurrence in the reference, the chunk
count over that alignment, and the best score over the references.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

ALPHA = 0.9
BETA = 3.0
GAMMA = 0.5


def _align_exact(hypothesis: Sequence[str], reference: Sequence[str]) -> list[tuple[int, int]]:
    """nltk's `_match_enums` on lowercased words: (hyp index, ref index) pairs sorted by hyp index."""
    positions: dict[str, list[int]] = defaultdict(list)
    for j, word in enumerate(reference):
        positions[word].append(j)
    matches: list[tuple[int, int]] = []
    for i in range(len(hypothesis) - 1, -1, -1):
        free = positions.get(hypothesis[i])
        if free:
            matches.append((i, free.pop()))
    matches.reverse()  # walked from the end, so reversing sorts by hypothesis index
    return matches


def _count_chunks(matches: list[tuple[int, int]]) -> int:
    """Fewest runs of matches adjacent in both hypothesis and reference (nltk's `_count_chunks`)."""
    chunks = 1
    for (i0, j0), (i1, j1) in zip(matches, matches[1:]):
        if not (i1 == i0 + 1 and j1 == j0 + 1):
            chunks += 1
    return chunks


def single_meteor(reference: Sequence[str], hypothesis: Sequence[str],
                  alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> float:
    """METEOR of one hypothesis against one reference (token lists)."""
    hyp = [w.lower() for w in hypothesis]
    ref = [w.lower() for w in reference]
    matches = _align_exact(hyp, ref)
    matches_count = len(matches)
    if not hyp or not ref or matches_count == 0:
        return 0.0
    # The same float operations, in the same order, as nltk's single_meteor_score.
    precision = float(matches_count) / len(hyp)
    recall = float(matches_count) / len(ref)
    fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall)
    frag_frac = float(_count_chunks(matches)) / matches_count
    penalty = gamma * frag_frac**beta
    return (1 - penalty) * fmean


def meteor(references: Sequence[Sequence[str]], hypothesis: Sequence[str],
           alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> float:
    """Best METEOR over the references (0.0 with no references)."""
    return max((single_meteor(ref, hypothesis, alpha, beta, gamma) for ref in references), default=0.0)


class _IdentityStemmer:
    """Porter would 'stem' Latin tokens inside Korean text; exact-only METEOR must not."""

    def stem(self, word: str) -> str:
        return word


class _NoWordNet:
    """A WordNet stand-in with no synonyms: no corpus download, no synonym matches."""

    def synsets(self, word: str) -> list:
        return []


def nltk_meteor(references: Sequence[Sequence[str]], hypothesis: Sequence[str]) -> float:
    """nltk's own `meteor_score` with stemming and WordNet neutralised (the reference for tests/bench)."""
    from nltk.translate.meteor_score import meteor_score

    return meteor_score([list(r) for r in references], list(hypothesis),
                        stemmer=_IdentityStemmer(), wordnet=_NoWordNet(),
                        alpha=ALPHA, beta=BETA, gamma=GAMMA)
