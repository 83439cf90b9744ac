"""A caption cut at train.max_caption_tokens ends at a sentence, or carries no end-of-turn token."""

from __future__ import annotations

import pytest

from kvcap.model.prompt import caption_target_ids

SENTENCES = ["맑은 날 도시의 거리가 보입니다.", "사람들이 천천히 걸어갑니다.", "카메라가 오른쪽으로 움직입니다."]


@pytest.fixture
def tokenizer(tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_models["qwen3"]), local_files_only=True)


def _n(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_short_caption_ends_the_turn(tokenizer):
    caption = " ".join(SENTENCES)
    ids = caption_target_ids(tokenizer, caption, 10_000, [7])
    assert ids == tokenizer.encode(caption, add_special_tokens=False) + [7]


def test_long_caption_is_cut_at_the_last_sentence_that_fits(tokenizer):
    caption = " ".join(SENTENCES)
    two = " ".join(SENTENCES[:2])
    limit = _n(tokenizer, two) + 2  # room for two sentences and a bit of the third
    assert _n(tokenizer, caption) > limit
    ids = caption_target_ids(tokenizer, caption, limit, [7])
    assert ids[-1] == 7 and len(ids) - 1 <= limit
    assert tokenizer.decode(ids[:-1]).strip() == two


def test_no_sentence_end_within_the_limit_means_no_end_token(tokenizer):
    caption = "도시의 거리가 보이고 " * 30 + "끝입니다."
    ids = caption_target_ids(tokenizer, caption, 12, [7])
    assert len(ids) == 12 and 7 not in ids
    assert ids == tokenizer.encode(caption, add_special_tokens=False)[:12]
    # A decimal point is not a sentence end.
    assert caption_target_ids(tokenizer, "속도는 3.5 미터 " * 20, 8, [7])[-1] != 7


def test_training_labels_of_a_cut_caption(tiny_captioner):
    """The real training path: the labels of a caption cut mid-sentence hold no end token."""
    from fixtures.model import random_features

    cap = tiny_captioner
    end = cap.prompt.end_ids
    cap.max_caption_tokens = 8
    long_run = "도시의 거리가 보이고 " * 20
    batch = cap.training_batch(random_features(cap, 2), [long_run, "맑은 날입니다."])
    labels = batch["labels"]  # (B, L)
    first = [int(v) for v in labels[0] if v != -100]
    second = [int(v) for v in labels[1] if v != -100]
    assert len(first) == 8 and not set(end) & set(first)
    assert second[-len(end):] == end
