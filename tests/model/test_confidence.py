"""Each caption's confidence (issue 26): both engines give every generated token's
log-probability as transformers' compute_transition_scores(normalize_logits=True) does for the
same tokens, without output_scores."""

from __future__ import annotations

import pytest
import torch
from fixtures.model import random_features

from kvcap.config import GenerationConfig
from kvcap.model.batch_generate import Generated, teacher_forced_logprobs


def _reference(captioner, features, gen):
    """transformers' own: generate with output_scores, then compute_transition_scores -> per clip
    (ids cut before the first stop/pad token, their log-probabilities)."""
    embeds, mask = captioner.prompt_batch(features)
    with torch.no_grad():
        out = captioner.llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=captioner.generation_config(gen),
                                     output_scores=True, return_dict_in_generate=True)
        scores = captioner.llm.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)  # (B, n)
    stops = set(captioner.prompt.stop_ids) | {captioner.tokenizer.pad_token_id}
    rows = []
    for ids, logps in zip(out.sequences.tolist(), scores.tolist()):
        cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
        rows.append((ids[:cut], logps[:cut]))
    return rows, embeds, mask, out.sequences


@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("engine", ["static", "hf"])
def test_token_logprobs_match_compute_transition_scores(tiny_captioner, engine, penalty):
    features = random_features(tiny_captioner, 3, seed=11)
    gen = GenerationConfig(max_new_tokens=20, repetition_penalty=penalty, min_new_tokens=3)
    expected, *_ = _reference(tiny_captioner, features, gen)
    got = tiny_captioner.generate_scored(features, gen, engine=engine)
    assert tiny_captioner.last_engine == engine
    assert [g.ids for g in got] == [ids for ids, _ in expected]
    assert all(len(ids) > 2 for ids, _ in expected)
    for g, (_, logps) in zip(got, expected):
        assert g.logprobs == pytest.approx(logps, abs=1e-4)
        assert g.avg_logprob == pytest.approx(sum(logps) / len(logps), abs=1e-4)
        assert all(lp <= 0 for lp in g.logprobs)


def test_teacher_forced_rescoring_is_the_models_own_distribution(tiny_captioner):
    """The beam-search path: with no processor changing the scores, re-scoring the tokens in one
    forward pass gives compute_transition_scores' numbers."""
    features = random_features(tiny_captioner, 2, seed=12)
    gen = GenerationConfig(max_new_tokens=12, repetition_penalty=1.0)
    expected, embeds, mask, sequences = _reference(tiny_captioner, features, gen)
    with torch.no_grad():
        rescored = teacher_forced_logprobs(tiny_captioner.llm, embeds, mask, sequences)
    for row, (ids, logps) in enumerate(expected):
        assert rescored[row, : len(ids)].tolist() == pytest.approx(logps, abs=1e-4)


def test_beam_search_carries_a_confidence(tiny_captioner):
    features = random_features(tiny_captioner, 2, seed=13)
    got = tiny_captioner.generate_scored(features, GenerationConfig(max_new_tokens=8, num_beams=2))
    assert tiny_captioner.last_engine == "hf"
    assert all(len(g.logprobs) == len(g.ids) and g.avg_logprob < 0 for g in got)


def test_no_token_means_no_average():
    assert Generated(ids=[], logprobs=[]).avg_logprob is None
    assert Generated(ids=[1, 2], logprobs=[-1.0, -2.0]).avg_logprob == -1.5
