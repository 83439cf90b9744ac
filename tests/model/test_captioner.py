"""The captioner: prompt layout, loss masking, batched generation over inputs_embeds."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from fixtures.model import random_features

from kvcap.config import GenerationConfig
from kvcap.model.captioner import IGNORE_INDEX

CAPTIONS = ["맑은 아침 바다", "비가 내리는 밤의 도시 풍경이다. 카메라가 천천히 움직인다."]


def test_prompt_is_the_chat_template_split_at_the_placeholder(tiny_captioner):
    tok, prompt = tiny_captioner.tokenizer, tiny_captioner.prompt
    assert prompt.placeholder == "<|video_pad|>" and not prompt.added_placeholder
    assert tok.decode(prompt.prefix_ids) == "<|im_start|>user\n"
    instruction = tiny_captioner.spec.prompt
    assert tok.decode(prompt.suffix_ids) == f"\n{instruction}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert prompt.end_ids == [tok.convert_tokens_to_ids("<|im_end|>")]
    assert tok.convert_tokens_to_ids("<|im_end|>") in prompt.stop_ids


def test_labels_cover_only_caption_and_end_token(tiny_captioner):
    features = random_features(tiny_captioner, 2)
    batch = tiny_captioner.training_batch(features, CAPTIONS)
    tok = tiny_captioner.tokenizer
    visual = tiny_captioner.num_visual_tokens
    prompt_len = tiny_captioner.prompt.prompt_length + visual
    lengths = [prompt_len + len(tok.encode(c, add_special_tokens=False)) + 1 for c in CAPTIONS]
    assert batch["inputs_embeds"].shape == (2, max(lengths), 64)
    for row, caption, length in zip(range(2), CAPTIONS, lengths):
        labels, mask = batch["labels"][row], batch["attention_mask"][row]
        target = tok.encode(caption, add_special_tokens=False) + [tok.convert_tokens_to_ids("<|im_end|>")]
        start = length - len(target)
        assert labels[start:length].tolist() == target
        assert (labels[:start] == IGNORE_INDEX).all() and (labels[length:] == IGNORE_INDEX).all()
        assert mask[:length].all() and not mask[length:].any()  # right padding
        assert tok.decode(labels[labels != IGNORE_INDEX]) == caption + "<|im_end|>"
    # the visual embeddings sit right after the prefix
    prefix = len(tiny_captioner.prompt.prefix_ids)
    projected = tiny_captioner._project(features)
    torch.testing.assert_close(batch["inputs_embeds"][:, prefix : prefix + visual], projected)


def test_loss_ignores_padding_and_reaches_the_projector(tiny_captioner):
    from kvcap.model.trainable import Mode

    tiny_captioner.apply_plan({"vision": Mode.FROZEN, "projector": Mode.FULL, "llm": Mode.FROZEN})
    features = random_features(tiny_captioner, 2)
    together = tiny_captioner.loss(features, CAPTIONS)
    assert together.ndim == 0 and torch.isfinite(together)
    together.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_captioner.projector.parameters())
    # The short caption alone gives the same per-token loss as inside a right-padded batch.
    alone = tiny_captioner.loss(features[:1], CAPTIONS[:1])
    batch = tiny_captioner.training_batch(features, CAPTIONS)
    logits = tiny_captioner.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    row_labels = batch["labels"][0, 1:]
    per_token = torch.nn.functional.cross_entropy(logits[0, :-1], row_labels, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(per_token, alone, atol=1e-5, rtol=1e-5)


def test_caption_cut_mid_sentence_does_not_end_the_turn(tiny_captioner):
    tiny_captioner.max_caption_tokens = 3  # inside the first sentence
    ids = tiny_captioner.tokenize_caption(CAPTIONS[1])
    assert len(ids) == 3 and tiny_captioner.prompt.end_ids[-1] not in ids
    # Room for the first sentence: cut there, and the turn ends (tests/model/test_caption_truncation.py).
    first = tiny_captioner.tokenizer.encode(CAPTIONS[1].split(". ")[0] + ".", add_special_tokens=False)
    tiny_captioner.max_caption_tokens = len(first) + 1
    assert tiny_captioner.tokenize_caption(CAPTIONS[1]) == first + tiny_captioner.prompt.end_ids


def _greedy_by_hand(captioner, features, steps):
    """Greedy decoding by recomputing the whole sequence each step (no KV cache)."""
    embeds, mask = captioner.prompt_batch(features)
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = captioner.llm(inputs_embeds=embeds, attention_mask=mask).logits[:, -1]
            token = logits.argmax(-1)
            out.append(token)
            embeds = torch.cat([embeds, captioner._embed_ids(token)[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return torch.stack(out, 1).tolist()


def test_greedy_generation_with_cache_matches_recomputation(tiny_captioner):
    # A model whose own generation_config asks for sampling must still decode greedily.
    tiny_captioner.llm.generation_config.do_sample = True
    tiny_captioner.llm.generation_config.temperature = 5.0
    features = random_features(tiny_captioner, 2, seed=3)
    gen = GenerationConfig(max_new_tokens=8, repetition_penalty=1.0)
    stops = set(tiny_captioner.prompt.stop_ids) | {tiny_captioner.tokenizer.pad_token_id}
    expected = [[t for t in row][: next((i for i, t in enumerate(row) if t in stops), len(row))]
                for row in _greedy_by_hand(tiny_captioner, features, 8)]
    assert tiny_captioner.generate_ids(features, gen) == expected
    assert tiny_captioner.generate_ids(features, gen) == expected  # deterministic


def test_batched_generation_equals_one_by_one(tiny_captioner):
    features = random_features(tiny_captioner, 4, seed=1)
    gen = GenerationConfig(max_new_tokens=12)
    batched = tiny_captioner.generate_ids(features, gen)
    alone = [tiny_captioner.generate_ids(features[i : i + 1], gen)[0] for i in range(4)]
    assert batched == alone
    assert len({tuple(x) for x in batched}) > 1  # the clips really differ
    texts = tiny_captioner.generate(features, gen)
    assert len(texts) == 4 and all(isinstance(t, str) and t == t.strip() for t in texts)


class _Ragged(list):
    """Projected visual tokens whose count differs per clip ((V_i, Dl) rows), as a projector with
    per-clip token counts would give; `prompt_batch` reads `.shape[0]` and indexes rows."""

    @property
    def shape(self):
        return (len(self),)


@pytest.mark.parametrize("engine", ["static", "hf"])
def test_prompt_batch_pads_left(tiny_captioner, monkeypatch, engine):
    cap = tiny_captioner
    features = random_features(cap, 3, seed=5)
    full = cap._project(features)  # (3, V, Dl)
    cut = (0, 5, 2)  # row i keeps V - cut[i] visual tokens: prompts of three lengths
    ragged = _Ragged(full[i, c:] for i, c in enumerate(cut))
    monkeypatch.setattr(cap, "_project", lambda f: ragged if f.shape[0] == 3 else _Ragged([ragged[int(f[0, 0, 0, 0])]]))
    embeds, mask = cap.prompt_batch(features)
    length = cap.prompt.prompt_length + cap.num_visual_tokens
    assert embeds.shape[:2] == mask.shape == (3, length)
    pad = cap._embed_ids([cap.tokenizer.pad_token_id])[0]
    for row, c in enumerate(cut):
        assert mask[row, :c].sum() == 0 and mask[row, c:].all()  # pads on the left, masked out
        torch.testing.assert_close(embeds[row, :c], pad.expand(c, -1))
        prefix = len(cap.prompt.prefix_ids)
        torch.testing.assert_close(embeds[row, c + prefix : c + prefix + cap.num_visual_tokens - c], full[row, c:])
    # A padded row generates the tokens it generates alone (no pads): masks and positions skip the pads.
    gen = GenerationConfig(max_new_tokens=12, engine=engine)
    together = cap.generate_ids(features, gen)
    assert cap.last_engine.startswith(engine)
    for row in range(3):
        index = torch.full_like(features[:1], float(row))  # tells the stub which row it is
        assert cap.generate_ids(index, gen) == [together[row]], row
    assert len({tuple(r) for r in together}) > 1  # the rows are not trivially alike


def _make_repetitive(cap) -> None:
    """Tilt the untrained LLM towards repeating its last token (the residual stream carries the
    input embedding), so the repetition options have something to change."""
    with torch.no_grad():
        cap.llm.lm_head.weight.add_(3 * cap.llm.get_input_embeddings().weight)


def test_repetition_options_are_applied(tiny_captioner):
    _make_repetitive(tiny_captioner)
    features = random_features(tiny_captioner, 2, seed=2)
    plain = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=12))
    assert all(len(set(pairwise(r))) < len(r) - 1 for r in plain)  # without options: 2-grams repeat
    no_repeat = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=12, no_repeat_ngram_size=2))
    for row in no_repeat:
        grams = list(pairwise(row))
        assert len(row) == 12 and len(grams) == len(set(grams))
    greedy = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=6, repetition_penalty=1.0))
    assert all(len(set(r)) < len(r) for r in greedy)
    penalised = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=6, repetition_penalty=50.0))
    for row in penalised:
        assert len(row) == 6 and len(row) == len(set(row))  # a huge penalty forbids any repeat


def test_beam_search_changes_the_caption(tiny_captioner):
    # A fixed set of clips (no seed hunting): beams run through transformers' generate and pick
    # another caption than greedy on at least one of them (greedy's path is not always the likeliest).
    differ = 0
    for seed in range(6):
        features = random_features(tiny_captioner, 1, seed=seed)
        greedy = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=6))[0]
        beams = tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=6, num_beams=3))[0]
        assert tiny_captioner.last_engine == "hf"
        differ += beams != greedy
    assert differ >= 1


def test_sampling_follows_the_seed(tiny_captioner):
    features = random_features(tiny_captioner, 2, seed=2)
    sample = GenerationConfig(max_new_tokens=6, do_sample=True, temperature=2.0)

    def draw(seed):
        torch.manual_seed(seed)
        return tiny_captioner.generate_ids(features, sample)

    first = draw(0)
    assert draw(0) == first  # same seed, same tokens
    assert draw(1) != first  # another seed, other tokens
    assert first != tiny_captioner.generate_ids(features, GenerationConfig(max_new_tokens=6))  # not greedy


def test_encode_and_properties(tiny_captioner):
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 64, 64, 3), dtype=np.uint8)
    features = tiny_captioner.encode(frames)
    assert features.shape == (2, 4, 16, 64)
    assert (tiny_captioner.image_size, tiny_captioner.frames) == (64, 4)
    with pytest.raises(ValueError, match="2 clips but 1 captions"):
        tiny_captioner.loss(features, ["하나"])


def test_plain_prompt_for_tokenizers_without_a_template(tiny_captioner):
    from kvcap.model.prompt import build_prompt_format, clean_caption

    tok = tiny_captioner.tokenizer
    tok.chat_template = None
    fmt = build_prompt_format(tok, "설명해 주세요.")
    assert tok.decode(fmt.prefix_ids) == "User: "
    assert tok.decode(fmt.suffix_ids) == "\n설명해 주세요.\nAssistant: "
    assert fmt.end_ids == [tok.eos_token_id]
    assert clean_caption("<think>\n생각\n</think>\n\n 바다가 보인다. ") == "바다가 보인다."
    assert clean_caption("바다\x00가\ufffd 보인다.\x07") == "바다가 보인다."
    assert clean_caption("바다가\n보인다.\t  끝\r\n") == "바다가 보인다. 끝"  # one line, as subtitles and JSONL need


def test_gradient_checkpointing_gives_the_same_loss_and_grads(tiny_models):
    from fixtures.model import make_tiny_config

    from kvcap.model.captioner import Captioner
    from kvcap.model.trainable import Mode

    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        captioner = Captioner.from_config(make_tiny_config({"model.gradient_checkpointing": checkpointing}), device="cpu")
        captioner.apply_plan({"vision": Mode.FROZEN, "projector": Mode.FULL, "llm": Mode.FROZEN})
        captioner.train()
        loss = captioner.loss(random_features(captioner, 2), CAPTIONS)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in captioner.trainable_parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)


def test_trainable_state_round_trip(tiny_captioner, tmp_path):
    """Resumable checkpoints (kvcap.trainer.resume) carry exactly the trained parameters."""
    from kvcap.model.trainable import Mode
    from kvcap.trainer.resume import ResumeError, load_checkpoint, save_checkpoint, trainable_state

    tiny_captioner.apply_plan({"vision": Mode.FROZEN, "projector": Mode.FULL, "llm": Mode.FROZEN})
    state = trainable_state(tiny_captioner)
    assert state and all(k.startswith("projector.") for k in state)
    optimizer = torch.optim.AdamW(tiny_captioner.trainable_parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    saved = save_checkpoint(tmp_path / "checkpoints", model=tiny_captioner, optimizer=optimizer, scheduler=scheduler,
                            position={"step": 1}, keep_last=1)
    with torch.no_grad():
        for p in tiny_captioner.trainable_parameters():
            p.zero_()
    load_checkpoint(saved, model=tiny_captioner, optimizer=optimizer, scheduler=scheduler)
    for name, value in trainable_state(tiny_captioner).items():
        assert torch.equal(value, state[name])
    tiny_captioner.apply_plan({"vision": Mode.FROZEN, "projector": Mode.FROZEN, "llm": Mode.FULL})
    with pytest.raises(ResumeError, match="missing"):
        load_checkpoint(saved, model=tiny_captioner, optimizer=optimizer, scheduler=scheduler)


def test_tokenizer_without_a_placeholder_gets_one_and_is_bundled(tiny_models, tmp_path, monkeypatch):
    """An LLM whose tokenizer has no video token: `<video>` is added and the checkpoint carries it."""
    from fixtures.model import make_tiny_config

    import kvcap.model.tiny.qwen3 as tiny_qwen3
    from kvcap.model.captioner import Captioner

    monkeypatch.setattr(tiny_qwen3, "SPECIAL_TOKENS", [t for t in tiny_qwen3.SPECIAL_TOKENS if t != "<|video_pad|>"])
    llm_dir = tiny_qwen3.write_tiny_qwen3(tmp_path / "llm-no-video")
    captioner = Captioner.from_config(make_tiny_config({"model.llm": str(llm_dir)}), device="cpu")
    assert captioner.prompt.placeholder == "<video>" and captioner.prompt.added_placeholder
    features = random_features(captioner, 2)
    assert torch.isfinite(captioner.loss(features, CAPTIONS))
    path = captioner.save(tmp_path / "ckpt")
    assert (path / "tokenizer").is_dir()
    loaded = Captioner.from_checkpoint(path, device="cpu")
    assert loaded.prompt.prefix_ids == captioner.prompt.prefix_ids
    assert loaded.prompt.suffix_ids == captioner.prompt.suffix_ids
    gen = GenerationConfig(max_new_tokens=6)
    assert loaded.generate_ids(features, gen) == captioner.generate_ids(features, gen)


def test_loss_over_caption_logits_equals_the_full_logits_loss(tiny_captioner):
    """`Captioner.loss` keeps logits only from the first label on; the value must not change."""
    torch.manual_seed(0)
    features = random_features(tiny_captioner, 3)
    captions = ["바다 위로 해가 뜬다.", "밤의 도시에 비가 내린다. 자동차가 지나간다.", "눈"]
    full = tiny_captioner.llm(**tiny_captioner.training_batch(features, captions), use_cache=False).loss
    assert torch.allclose(tiny_captioner.loss(features, captions), full, atol=1e-6)


def test_generation_defaults_come_from_the_typed_config(tiny_captioner, monkeypatch):
    """Settings neither the checkpoint nor the caller gives are GenerationConfig's defaults
    (repetition 1.05, temperature 0.7, top_p 0.9), not a second set written in the captioner."""
    monkeypatch.setattr(tiny_captioner.spec, "generation", {"max_new_tokens": 7})  # an older, partial checkpoint
    defaults = GenerationConfig()
    hf = tiny_captioner.generation_config({"do_sample": True})
    assert (hf.repetition_penalty, hf.temperature, hf.top_p) == (
        defaults.repetition_penalty, defaults.temperature, defaults.top_p)
    assert hf.max_new_tokens == 7  # the checkpoint's own beats the default
    static = tiny_captioner._static_settings({}, {})
    assert static is not None and static.repetition_penalty == defaults.repetition_penalty
    assert tiny_captioner.generation_config({"repetition_penalty": 1.2}).repetition_penalty == 1.2  # the caller's wins
