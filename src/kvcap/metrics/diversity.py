"""Diversity of a set of captions: 1 - self-BLEU-4, unique ratio, distinct-n, repetition.

Self-BLEU-4 is the mean, over captions, of nltk's `sentence_bleu` (weights 0.25 x 4, smoothing
method1, `auto_reweigh=True`) of each caption against all the *other* captions.

Short captions: a caption of L < 4 tokens holds no 4-gram, so with fixed weights its missing
orders are smoothed to epsilon and even an exact copy of another caption scores only
0.1 ** 0.75 = 0.18 (46 captions of `.`, `..` and `.......` had diversity 0.82). nltk's own
`auto_reweigh` fixes that the way BLEU means it: the weights become 1/L over the L orders the
caption has, so a one-token caption is scored on unigrams alone, and an exact copy scores 1.
Smoothing method1 still applies to the orders it keeps. An empty caption has no order at all:
nltk returns 0 ("no match"), which for *self*-BLEU would read as "fully diverse"; here it
scores 1 (it adds nothing new), the one departure from nltk. Done naively that is O(N^2) n-gram
counting (1,068 captions of ~400 tokens: minutes). :func:`self_bleu` computes exactly the same
numbers in O(total n-grams): BLEU's clipped count needs, per hypothesis n-gram, only the largest
count of that n-gram in any other caption, and the largest over "all but me" is the top count
over all captions unless I hold it, in which case it is the runner-up. Keeping the top two
(count, owner) per n-gram therefore gives every caption's clip counts in one pass; the closest
reference length is found the same way from the sorted lengths. A test proves equality with
nltk to 1e-9.

Self-BLEU grows with the number of other captions a caption is compared with, so above 199
captions they are split by a seeded shuffle into pools of 100-199 (:func:`diversity_pools`)
and each caption is scored against the rest of its pool: deterministic, and comparable between
a small training eval and a full val-split score.

Repetition uses Whisper's measure: a caption whose UTF-8 bytes compress (zlib, the deflate
inside gzip) by a ratio above 2.4 is flagged as repetitive.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from typing import Sequence

from kvcap.records import FLAG_COMPRESSION_ABOVE, compression_ratio

BLEU_ORDER = 4
SMOOTHING_EPSILON = 0.1  # nltk SmoothingFunction().method1 default
EMPTY_SELF_BLEU = 1.0  # an empty caption adds nothing new: it counts as a copy, not as diverse
REPETITION_RATIO = FLAG_COMPRESSION_ABOVE  # the suspect mark's default (Whisper's 2.4): one repetition rule
POOL_SIZE = 100   # self-BLEU references per caption: its pool of 100-199 captions
POOL_SEED = 0


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(zip(*(tokens[k:] for k in range(n)))) if len(tokens) >= n else Counter()


def _closest_other_length(sorted_lengths: list[int], own: int) -> int:
    """nltk's closest_ref_length over all lengths but one copy of `own` (ties -> the shorter)."""
    lo = bisect.bisect_left(sorted_lengths, own)
    hi = bisect.bisect_right(sorted_lengths, own)
    if hi - lo > 1:
        return own  # another caption has exactly my length
    candidates = []
    if lo > 0:
        candidates.append(sorted_lengths[lo - 1])
    if hi < len(sorted_lengths):
        candidates.append(sorted_lengths[hi])
    return min(candidates, key=lambda length: (abs(length - own), length))


def _sentence_bleu(numerators: list[int], denominators: list[int], hyp_len: int, ref_len: int) -> float:
    """nltk corpus_bleu's arithmetic for one hypothesis: smoothing method1, weights 1/4 each,
    or 1/L over the first L orders for a caption of L < 4 tokens (nltk's auto_reweigh)."""
    if hyp_len == 0:
        return EMPTY_SELF_BLEU
    if numerators[0] == 0:
        return 0.0
    if hyp_len > ref_len:
        bp = 1
    elif hyp_len == 0:
        bp = 0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    # method1: a zero numerator becomes epsilon (a float); others keep their exact ratio.
    orders = min(BLEU_ORDER, hyp_len)
    precisions = [(SMOOTHING_EPSILON / d) if num == 0 else num / d
                  for num, d in zip(numerators[:orders], denominators[:orders])]
    weight = 1 / orders
    total = math.fsum(weight * math.log(p) for p in precisions if p > 0)
    return bp * math.exp(total)


def self_bleu_scores(token_lists: Sequence[Sequence[str]]) -> list[float]:
    """Each caption's BLEU-4 against all the other captions (nltk-equal, O(total n-grams))."""
    count = len(token_lists)
    if count < 2:
        return [0.0] * count
    per_order = [[_ngrams(tokens, n) for tokens in token_lists] for n in range(1, BLEU_ORDER + 1)]
    numerators = [[0] * BLEU_ORDER for _ in range(count)]
    denominators = [[0] * BLEU_ORDER for _ in range(count)]
    for order, counters in enumerate(per_order):
        # n-gram -> [best count, its owner, runner-up count] over all captions
        top: dict[tuple, list[int]] = {}
        for owner, counts in enumerate(counters):
            for gram, c in counts.items():
                slot = top.get(gram)
                if slot is None:
                    top[gram] = [c, owner, 0]
                elif c > slot[0]:
                    slot[2] = slot[0]
                    slot[0], slot[1] = c, owner
                elif c > slot[2]:
                    slot[2] = c
        for owner, counts in enumerate(counters):
            clipped = 0
            for gram, c in counts.items():
                best, best_owner, second = top[gram]
                clipped += min(c, second if best_owner == owner else best)
            numerators[owner][order] = clipped
            denominators[owner][order] = max(1, sum(counts.values()))
    lengths = sorted(len(tokens) for tokens in token_lists)
    return [
        _sentence_bleu(numerators[i], denominators[i], len(tokens), _closest_other_length(lengths, len(tokens)))
        for i, tokens in enumerate(token_lists)
    ]


def diversity_pools(count: int, pool: int = POOL_SIZE, seed: int = POOL_SEED) -> list[list[int]]:
    """Caption indices split into pools of `pool` to `2 * pool - 1` captions (one pool if fewer).

    Self-BLEU against N others rises with N (more references, more chance matches), so a
    fixed-size pool keeps diversity comparable between a 100-clip training eval and a
    1,068-clip `kvcap score`. The split is a seeded shuffle: the same captions, the same pools.
    """
    groups = max(1, count // pool)
    order = list(range(count))
    if groups > 1:
        random.Random(seed).shuffle(order)
    return [sorted(order[k::groups]) for k in range(groups)]


def self_bleu(token_lists: Sequence[Sequence[str]], pool: int = POOL_SIZE, seed: int = POOL_SEED) -> float:
    """Mean self-BLEU-4, each caption against the others of its pool (0.0 for fewer than two)."""
    if len(token_lists) < 2:
        return 0.0
    scores: list[float] = []
    for members in diversity_pools(len(token_lists), pool, seed):
        scores.extend(self_bleu_scores([token_lists[i] for i in members]))
    return sum(scores) / len(scores)


def distinct_n(token_lists: Sequence[Sequence[str]], n: int) -> float:
    """Corpus distinct-n: distinct n-grams / all n-grams over every caption (0.0 when none)."""
    seen: set[tuple] = set()
    total = 0
    for tokens in token_lists:
        grams = list(zip(*(tokens[k:] for k in range(n))))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def is_repetitive(text: str, threshold: float = REPETITION_RATIO) -> bool:
    return compression_ratio(text) > threshold


def diversity_stats(texts: Sequence[str], token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    """diversity (1 - self-BLEU-4), unique_ratio, distinct_1, distinct_2, repetitive_share."""
    count = len(texts)
    if count == 0:
        return {"diversity": 0.0, "unique_ratio": 0.0, "distinct_1": 0.0, "distinct_2": 0.0, "repetitive_share": 0.0}
    return {
        "diversity": 1.0 - self_bleu(token_lists) if count > 1 else 0.0,
        "unique_ratio": len({t.strip() for t in texts}) / count,
        "distinct_1": distinct_n(token_lists, 1),
        "distinct_2": distinct_n(token_lists, 2),
        "repetitive_share": sum(is_repetitive(t) for t in texts) / count,
    }
