"""METEOR and self-BLEU equal nltk's on the same tokens; morphemes beat whitespace for Korean."""

from __future__ import annotations

import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from kvcap.metrics.diversity import diversity_pools, self_bleu, self_bleu_scores
from kvcap.metrics.meteor import meteor, nltk_meteor
from kvcap.metrics.tokenize import get_tokenizer

from metrics_helpers import captions


@pytest.fixture(scope="module")
def kiwi_token_lists():
    """~300 varied Korean captions as Kiwi morphemes (one batched Kiwi call)."""
    texts = captions(300, seed=7, sentences=(1, 5))
    return get_tokenizer("kiwi").tokenize_many(texts)


def test_meteor_equals_nltk_on_korean_morphemes(kiwi_token_lists):
    rng = random.Random(1)
    lists = kiwi_token_lists
    worst, nonzero = 0.0, 0
    for _ in range(300):
        hyp = rng.choice(lists)
        refs = [rng.choice(lists) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.2:  # partial copies: long chunks and reordering exercise fragmentation
            refs[0] = hyp[: len(hyp) // 2] + rng.sample(hyp, len(hyp) // 3)
        ours, theirs = meteor(refs, hyp), nltk_meteor(refs, hyp)
        worst = max(worst, abs(ours - theirs))
        nonzero += theirs > 0
    assert worst < 1e-9
    assert nonzero > 250  # the comparison covered real scores, not a pile of zeros


@pytest.mark.parametrize("refs, hyp", [
    ([["바다"]], []),                        # empty hypothesis
    ([[]], ["바다"]),                        # empty reference
    ([["산", "이"]], ["바다", "가"]),         # nothing in common
    ([["Sea", "바다", "sea"]], ["SEA", "sea", "바다"]),  # nltk lowercases
    ([["가", "가", "가"], ["가"]], ["가", "가"]),         # repeats, best of two references
])
def test_meteor_edge_cases_equal_nltk(refs, hyp):
    assert meteor(refs, hyp) == pytest.approx(nltk_meteor(refs, hyp), abs=1e-12)


def test_morphemes_match_across_particles_where_words_do_not():
    reference = "저녁의 바다를 보았다"
    hypothesis = "저녁에 바다가 빛난다"
    kiwi, ws = get_tokenizer("kiwi"), get_tokenizer("whitespace")
    (ref_k, hyp_k), (ref_w, hyp_w) = kiwi.tokenize_many([reference, hypothesis]), ws.tokenize_many([reference, hypothesis])
    assert "바다" in ref_k and "바다" in hyp_k
    assert meteor([ref_w], hyp_w) == 0.0          # 바다가 != 바다를 as words
    assert meteor([ref_k], hyp_k) > 0.1           # ... but both hold the morpheme 바다


def test_self_bleu_equals_nltk_sentence_bleu(kiwi_token_lists):
    lists = [list(t) for t in kiwi_token_lists[:40]]
    lists += [list(lists[3]), list(lists[3]), [], lists[5][:2], lists[6][:1], lists[7][:3], lists[7][:3]]
    smooth = SmoothingFunction().method1
    expected = [sentence_bleu([c for j, c in enumerate(lists) if j != i], h, smoothing_function=smooth,
                              auto_reweigh=True) if h else 1.0  # an empty caption counts as a copy
                for i, h in enumerate(lists)]
    ours = self_bleu_scores(lists)
    assert max(abs(a - b) for a, b in zip(ours, expected)) < 1e-9
    assert ours[3] == pytest.approx(1.0)  # has exact copies among the others
    assert ours[-1] == pytest.approx(1.0)  # a 3-token caption and its copy: scored on orders 1-3


def test_short_captions_that_copy_each_other_have_no_diversity():
    """Captions under 4 tokens are scored on the orders they have (nltk's auto_reweigh), so
    copies of `.` are copies, not 0.82-diverse; distinct one-token captions stay diverse."""
    from kvcap.metrics.diversity import diversity_stats

    dots = [".", "..", "......."] * 15 + ["."]
    assert diversity_stats(dots, [[t] for t in dots])["diversity"] == pytest.approx(0.0)
    words = ["바다", "산", "도시", "하늘", "구름", "비"]
    assert diversity_stats(words, [[w] for w in words])["diversity"] == pytest.approx(1.0)
    pairs = [["바다", "가"], ["바다", "가"], ["산", "이"], ["산", "이"]]
    assert diversity_stats(["a"] * 4, pairs)["diversity"] == pytest.approx(0.0)
    assert diversity_stats(["", ""], [[], []])["diversity"] == pytest.approx(0.0)


def test_large_sets_use_seeded_pools_each_equal_to_nltk(kiwi_token_lists):
    lists = [list(t) for t in kiwi_token_lists[:250]]
    pools = diversity_pools(len(lists), pool=100, seed=0)
    assert len(pools) == 2 and sorted(i for p in pools for i in p) == list(range(250))
    assert pools == diversity_pools(250, pool=100, seed=0)  # deterministic
    smooth = SmoothingFunction().method1
    expected = []
    for members in pools:
        group = [lists[i] for i in members]
        expected += [sentence_bleu(group[:k] + group[k + 1:], h, smoothing_function=smooth, auto_reweigh=True)
                     for k, h in enumerate(group)]
    assert self_bleu(lists) == pytest.approx(sum(expected) / len(expected), abs=1e-9)
    assert diversity_pools(150, pool=100) == [list(range(150))]  # under two pools: everyone vs everyone
