"""The static-cache decode loop (kvcap.model.decode): same greedy tokens as transformers' generate."""

from __future__ import annotations

import logging

import pytest
import torch
from fixtures.model import random_features

from kvcap.config import GenerationConfig
from kvcap.model.decode import GreedySettings, StaticDecoder, bucket_length, unsupported_reason


def _hf_greedy(captioner, embeds, mask, **kwargs):
    """transformers' own generate (dynamic cache), the reference."""
    config = captioner.generation_config(None, **kwargs)
    with torch.no_grad():
        return captioner.llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=config)


def _ragged_batch(captioner, seed=0):
    """A left-padded batch whose rows have different prompt lengths (0, 3 and 7 extra pad columns)."""
    embeds, mask = captioner.prompt_batch(random_features(captioner, 3, seed=seed))
    pad = captioner._embed_ids([captioner.tokenizer.pad_token_id])[0]
    embeds, mask = embeds.clone(), mask.clone()
    for row, cut in enumerate((0, 3, 7)):
        embeds[row, :cut] = pad
        mask[row, :cut] = 0
    return embeds, mask


def _settings(captioner, max_new, **kwargs):
    return GreedySettings(max_new_tokens=max_new, stop_ids=tuple(captioner.prompt.stop_ids),
                          pad_id=captioner.tokenizer.pad_token_id, **kwargs)


def _cut(captioner, rows):
    stops = set(captioner.prompt.stop_ids) | {captioner.tokenizer.pad_token_id}
    return [row[: next((i for i, t in enumerate(row) if t in stops), len(row))] for row in rows]


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_static_loop_matches_hf_generate_on_a_ragged_left_padded_batch(tiny_captioner, penalty):
    embeds, mask = _ragged_batch(tiny_captioner)
    expected = _hf_greedy(tiny_captioner, embeds, mask, max_new_tokens=24, repetition_penalty=penalty)
    got = StaticDecoder(tiny_captioner.llm).generate(embeds, mask, _settings(tiny_captioner, 24, repetition_penalty=penalty))
    assert _cut(tiny_captioner, got.tolist()) == _cut(tiny_captioner, expected.tolist())
    # and row by row, unpadded (batch 1)
    for row in range(3):
        keep = mask[row].bool()
        alone = StaticDecoder(tiny_captioner.llm).generate(
            embeds[row : row + 1, keep], mask[row : row + 1, keep], _settings(tiny_captioner, 24, repetition_penalty=penalty))
        assert _cut(tiny_captioner, alone.tolist()) == _cut(tiny_captioner, got[row : row + 1].tolist())


def test_min_new_tokens_bans_the_stop_tokens_until_reached(tiny_captioner):
    embeds, mask = _ragged_batch(tiny_captioner, seed=2)
    stops = set(tiny_captioner.prompt.stop_ids)
    # Make a stop token the model's favourite: without min_new_tokens every row stops at once.
    stop = tiny_captioner.prompt.stop_ids[0]
    with torch.no_grad():
        head = tiny_captioner.llm.get_output_embeddings().weight
        saved = head[stop].clone()
        head[stop] = head.abs().max() * 50 * torch.sign(head.mean(0) + 1e-9)
    try:
        free = _hf_greedy(tiny_captioner, embeds, mask, max_new_tokens=12, repetition_penalty=1.0)
        forced = _hf_greedy(tiny_captioner, embeds, mask, max_new_tokens=12, min_new_tokens=12, repetition_penalty=1.0)
        decoder = StaticDecoder(tiny_captioner.llm, check_every=4)
        static_free = decoder.generate(embeds, mask, _settings(tiny_captioner, 12))
        static_forced = decoder.generate(embeds, mask, _settings(tiny_captioner, 12, min_new_tokens=12))
    finally:
        with torch.no_grad():
            head[stop] = saved
    assert any(len(r) < 12 for r in _cut(tiny_captioner, free.tolist()))  # the stop token is favoured ...
    assert forced.shape[1] == 12 and not stops & set(forced.flatten().tolist())  # ... and banned
    assert static_forced.tolist() == forced.tolist()
    assert _cut(tiny_captioner, static_free.tolist()) == _cut(tiny_captioner, free.tolist())
    # all rows finished: the loop stopped at the first check after that, not at max_new_tokens
    assert static_free.shape[1] < 12


def test_captioner_engines_agree_and_static_is_the_default(tiny_captioner):
    features = random_features(tiny_captioner, 4, seed=5)
    gen = GenerationConfig(max_new_tokens=16, repetition_penalty=1.05)
    hf = tiny_captioner.generate_ids(features, gen, engine="hf")
    assert tiny_captioner.last_engine == "hf"
    static = tiny_captioner.generate_ids(features, gen)  # engine "auto"
    assert tiny_captioner.last_engine == "static"
    assert static == hf
    assert tiny_captioner.generate_ids(features[:1], gen, engine="static") == hf[:1]  # batch 1, new buffers
    assert tiny_captioner.generate_ids(features, gen, engine="static") == hf  # buffers reused


@pytest.mark.parametrize("option", [{"do_sample": True}, {"num_beams": 2}, {"no_repeat_ngram_size": 3}])
def test_options_the_loop_lacks_fall_back_to_hf_generate(tiny_captioner, option, caplog):
    assert unsupported_reason(option, tiny_captioner.llm)
    features = random_features(tiny_captioner, 2, seed=1)
    with caplog.at_level(logging.INFO, logger="kvcap.model.captioner"):
        tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=4), engine="static", **option)
    assert tiny_captioner.last_engine == "hf"
    assert "needs transformers' generate" in caplog.text


def test_eager_attention_uses_an_additive_mask_and_matches(tiny_captioner):
    tiny_captioner.llm.config._attn_implementation = "eager"
    embeds, mask = _ragged_batch(tiny_captioner, seed=4)
    expected = _hf_greedy(tiny_captioner, embeds, mask, max_new_tokens=10, repetition_penalty=1.0)
    got = StaticDecoder(tiny_captioner.llm).generate(embeds, mask, _settings(tiny_captioner, 10))
    assert _cut(tiny_captioner, got.tolist()) == _cut(tiny_captioner, expected.tolist())


def test_cache_lengths_round_up_to_buckets():
    assert bucket_length(1) == 64 and bucket_length(64) == 64 and bucket_length(65) == 128


def test_static_loop_matches_hf_on_a_4bit_llm_with_peft_lora(tiny_models):
    """The same quantization both ways: 4-bit weights, LoRA kept as peft layers (as `kvcap caption`
    loads a 4-bit stage-2 checkpoint)."""
    pytest.importorskip("bitsandbytes")
    from fixtures.model import make_tiny_config

    from kvcap.config import TrainConfig
    from kvcap.model.captioner import Captioner
    from kvcap.model.trainable import is_peft_model, plan_for_stage

    torch.manual_seed(0)
    cfg = make_tiny_config({"model.quantization": "4bit"})
    captioner = Captioner.from_config(cfg, device="cpu")
    captioner.apply_plan(plan_for_stage(TrainConfig().stage2), cfg.lora)
    with torch.no_grad():  # LoRA B starts at zero: give the adapters a real effect
        for name, param in captioner.llm.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    captioner.eval()
    assert is_peft_model(captioner.llm)
    features = random_features(captioner, 3, seed=6)
    gen = GenerationConfig(max_new_tokens=12, repetition_penalty=1.05)
    hf = captioner.generate_ids(features, gen, engine="hf")
    assert captioner.generate_ids(features, gen, engine="static") == hf
    assert captioner.last_engine == "static"
