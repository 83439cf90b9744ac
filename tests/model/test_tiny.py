"""tiny:* backbones: written once, deterministic, loadable through the real from_pretrained path."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kvcap.model.tiny import resolve_model_id, tiny_dir


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_non_tiny_ids_pass_through(tmp_path):
    assert resolve_model_id("Qwen/Qwen3-8B") == "Qwen/Qwen3-8B"
    assert resolve_model_id(str(tmp_path)) == str(tmp_path)


def test_unknown_tiny_name_lists_valid(tiny_models):
    with pytest.raises(ValueError, match="tiny:clip, tiny:clip8, tiny:qwen3, tiny:siglip2"):
        resolve_model_id("tiny:gpt5")


def test_written_once_under_kvcap_home(tiny_models):
    path = Path(resolve_model_id("tiny:qwen3"))
    assert path == tiny_dir("qwen3") == tiny_models["qwen3"]
    assert path.parent.parent == tiny_models["home"]
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_id("tiny:qwen3") == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not rewritten


def test_writers_are_deterministic(tmp_path):
    from kvcap.model.tiny import write_tiny_clip, write_tiny_qwen3

    a, b = write_tiny_qwen3(tmp_path / "a"), write_tiny_qwen3(tmp_path / "b")
    assert _digest(a) == _digest(b)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert _digest(write_tiny_clip(tmp_path / "c")) == _digest(write_tiny_clip(tmp_path / "d"))


def test_tiny_clip8_has_four_times_the_patches(tiny_models):
    from kvcap.model.dims import vision_dims
    from kvcap.model.vision import VisionEncoder

    assert vision_dims("tiny:clip") == (64, 16)
    assert vision_dims("tiny:clip8") == (64, 64)
    encoder = VisionEncoder("tiny:clip8", layer=-2, cls="drop", device="cpu")
    frames = np.zeros((1, 2, 64, 64, 3), dtype=np.uint8)
    assert tuple(encoder.encode(frames).shape) == (1, 2, 64, 64)  # (B, T, 8 x 8 patches, width)


def test_concurrent_first_use_is_safe(tmp_path, monkeypatch):
    """Two first uses racing (both past the "already written?" check) leave one complete copy."""
    import kvcap.model.tiny as tiny

    monkeypatch.setenv("KVCAP_HOME", str(tmp_path))
    real_writer = tiny._writer("clip")
    barrier = threading.Barrier(2, timeout=60)

    def racing_writer(out_dir):
        barrier.wait()  # both threads are now writing their own temp dir
        return real_writer(out_dir)

    monkeypatch.setattr(tiny, "_writer", lambda name: racing_writer)
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda _: resolve_model_id("tiny:clip"), range(2)))
    assert outs[0] == outs[1]
    target = Path(outs[0])
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in target.iterdir()}
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp dirs left


def test_a_copy_finished_meanwhile_is_kept(tmp_path, monkeypatch):
    """If another process finishes while we write, its copy (maybe being read) is not replaced."""
    import kvcap.model.tiny as tiny

    monkeypatch.setenv("KVCAP_HOME", str(tmp_path))
    real_writer = tiny._writer("clip")

    def writer_losing_the_race(out_dir):
        other = tiny.tiny_dir("clip")
        real_writer(other)
        (other / "written-by-the-other-process").touch()
        return real_writer(out_dir)

    monkeypatch.setattr(tiny, "_writer", lambda name: writer_losing_the_race)
    target = Path(resolve_model_id("tiny:clip"))
    assert (target / "written-by-the-other-process").exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_tiny_qwen3_tokenizer_is_qwen_like(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["qwen3"])
    assert 1000 <= len(tokenizer) <= 2048
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|video_pad|>"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    text = "맑은 아침, 잔잔한 바다 위로 새 떼가 날아간다."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")) / 2  # trained merges, not raw bytes
    messages = [{"role": "user", "content": "안녕"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt == "<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    thinking = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert thinking == "<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant\n"


def test_tiny_backbones_load_with_auto_classes(tiny_models):
    from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionModel

    llm = AutoModelForCausalLM.from_pretrained(tiny_models["qwen3"])
    assert llm.config.model_type == "qwen3" and not llm.config.tie_word_embeddings
    vision = CLIPVisionModel.from_pretrained(tiny_models["clip"])
    assert vision.config.image_size == 64 and vision.config.patch_size == 16
    assert AutoConfig.from_pretrained(tiny_models["siglip2"]).model_type == "siglip2"
