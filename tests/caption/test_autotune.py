"""`caption.quantization = "auto"`, `--batch-size auto` and the out-of-memory back-off (kvcap.caption.autotune)."""

from __future__ import annotations

import sys

import pytest
from .fake_captioner import FakeCaptioner

from kvcap.caption import autotune
from kvcap.caption.autotune import AUTO, BatchLimit, choose_batch, choose_quantization

GIB = 1024**3

# Qwen3-8B's config.json numbers.
QWEN3_8B = {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": False}


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError (matched by name, as the module never imports torch)."""


def test_weight_and_cache_sizes_of_qwen3_8b():
    assert 15.0 * GIB < autotune.llm_bytes(QWEN3_8B) < 15.6 * GIB  # 8.2 B parameters in bf16: 15.3 GiB on disk
    assert autotune.kv_bytes_per_token(QWEN3_8B) == 2 * 36 * 8 * 128 * 2  # 144 KiB a token


def _quant(free_gib, batch=AUTO, requested=AUTO, device="cuda:0"):
    return choose_quantization(requested, device=device, trained="4bit",
                               free_bytes=None if free_gib is None else int(free_gib * GIB),
                               weight_bytes=autotune.llm_bytes(QWEN3_8B),
                               per_clip_bytes=autotune.clip_bytes(QWEN3_8B, 4608 + 64 + 512), batch=batch)


def test_auto_quantization_is_bf16_when_it_fits_else_4bit():
    roomy = _quant(130)  # an H200 with the vision tower loaded
    assert roomy.value == "none" and "fits" in roomy.reason and "LoRA merged" in roomy.reason
    tight = _quant(20)  # a 24 GB card
    assert tight.value == "4bit" and "exceeds" in tight.reason
    # a fixed batch counts: 40 GiB holds bf16 with 4 clips, not with 48
    assert _quant(40, batch=4).value == "none"
    assert _quant(40, batch=48).value == "4bit"


def test_auto_quantization_on_cpu_and_explicit_values_keep_todays_behaviour():
    assert _quant(None, device="cpu").value == "4bit"  # as trained
    assert _quant(130, requested="checkpoint").value == "4bit"
    assert _quant(20, requested="none").value == "none"  # asked for: no second guessing


def test_auto_batch_is_the_largest_probe_that_fits():
    sizes = []

    def probe(batch):
        sizes.append(batch)
        if batch > 8:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch * GIB

    choice = choose_batch(AUTO, device="cuda:0", probe=probe, free_bytes=100 * GIB)
    assert choice.value == 8 and sizes == [1, 2, 4, 8, 16]
    assert "batch 16 ran out of memory" in choice.reason
    # the measured peak must also leave the headroom free
    assert choose_batch(AUTO, device="cuda:0", probe=lambda b: b * 10 * GIB, free_bytes=50 * GIB).value == 4
    # nothing fits: batch 1, and the back-off takes it from there
    def never(batch):
        raise OutOfMemoryError("out of memory")

    assert choose_batch(AUTO, device="cuda:0", probe=never, free_bytes=GIB).value == 1


def test_auto_batch_on_cpu_is_todays_default_and_numbers_pass_through():
    assert choose_batch(AUTO, device="cpu").value == autotune.CPU_BATCH == 4
    assert choose_batch(12, device="cuda:0", probe=lambda b: 1 / 0).value == 12  # no probe for a fixed size


def test_a_probe_error_that_is_not_memory_is_raised():
    with pytest.raises(ZeroDivisionError):
        choose_batch(AUTO, device="cuda:0", probe=lambda b: 1 / 0, free_bytes=GIB)


def test_batch_limit_halves_on_out_of_memory_without_losing_items():
    calls, notes = [], []

    def run(items):
        calls.append(len(items))
        if len(items) > 3:
            raise OutOfMemoryError("CUDA out of memory")
        return [f"t{i}" for i in items]

    limit = BatchLimit(8, note=notes.append)
    assert limit.run(run, list(range(8))) == [f"t{i}" for i in range(8)]
    assert calls == [8, 4, 2, 2, 4, 2, 2] and limit.size == 2
    assert notes and "batch size now" in notes[0]
    def broken(items):
        raise ValueError("bad clip")

    with pytest.raises(ValueError):  # only running out of memory is retried
        BatchLimit(4).run(broken, [1, 2])


def test_pipeline_backs_off_and_captions_every_video(h264_folder, tmp_path):
    from kvcap.caption import CaptionOptions, caption_folder

    class SmallMemory(FakeCaptioner):
        def generate(self, features, gen):
            if len(features) > 2:
                self.batches.append(-len(features))
                raise OutOfMemoryError("CUDA out of memory")
            return super().generate(features, gen)

    captioner = SmallMemory()
    results = list(caption_folder([h264_folder(5)], captioner, tmp_path / "out", CaptionOptions(batch_size=4, workers=1)))
    assert sum(r.ok for r in results) == 5
    assert captioner.batches[0] == -4 and max(captioner.batches) <= 2  # later batches start small


def test_autotune_module_does_not_import_torch():
    import subprocess

    code = "import sys, kvcap.caption.autotune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_probe_runs_a_real_batch_through_the_static_loop(tiny_captioner):
    """probe_batches on the tiny model (CPU: no memory figures, the code path is the GPU's)."""
    from kvcap.config import GenerationConfig

    gen = GenerationConfig(max_new_tokens=300)
    probe = autotune.probe_batches(tiny_captioner, gen)
    assert probe(3) is None
    decoder = tiny_captioner._static_decoder()
    assert decoder._state.batch == 3 and decoder._state.max_len >= 300  # sized for the whole caption
    assert decoder.timings["steps"] == 2  # ... but only prefill and two decode steps ran
    choice = choose_batch(AUTO, device="cuda:0", probe=probe, free_bytes=None, limit=4)
    assert choice.value == 4 and "capped at 4" in choice.reason


def _checkpoint_with_qwen3_8b(tmp_path, **projector):
    """The demo checkpoint's kvcap.json (a 64-token mixer projector), its LLM a local folder
    holding Qwen3-8B's config.json, so the quantization decision reads the real numbers."""
    import json

    from kvcap.model.checkpoint import DEMO_DIR, SPEC_FILE

    llm = tmp_path / "qwen3-8b"
    llm.mkdir(exist_ok=True)
    (llm / "config.json").write_text(json.dumps(QWEN3_8B))
    spec = json.loads((DEMO_DIR / SPEC_FILE).read_text(encoding="utf-8"))
    spec["llm"].update(id=str(llm), bundled=False, quantization="4bit")
    spec["projector"].update(projector)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir(exist_ok=True)
    (ckpt / SPEC_FILE).write_text(json.dumps(spec))
    return ckpt, spec


def test_prompt_length_comes_from_the_checkpoint(tmp_path):
    """A 64-token projector's prompt is ~200 tokens, not the widest projector's 4,608 + 64: on a
    40 GiB card 48 clips of it fit beside the bf16 LLM (before: 4bit, sized for 4,608 tokens)."""
    ckpt, spec = _checkpoint_with_qwen3_8b(tmp_path)
    prompt_bytes = len(spec["prompt"].encode("utf-8"))
    assert autotune.prompt_tokens(spec) == 64 + autotune.TEMPLATE_TOKENS + prompt_bytes
    assert autotune.prompt_tokens(spec, prompt="hi") == 64 + autotune.TEMPLATE_TOKENS + 2  # --prompt counts
    decide = lambda: autotune.decide_quantization(AUTO, ckpt, "cuda:0", 48, max_new_tokens=512,  # noqa: E731
                                                  free_bytes=40 * GIB)
    assert decide().value == "none"
    _, wide = _checkpoint_with_qwen3_8b(tmp_path, num_visual_tokens=4608)  # mlp2x_gelu on CLIP-L/336: same folder
    assert autotune.prompt_tokens(wide) == 4608 + autotune.TEMPLATE_TOKENS + prompt_bytes
    assert decide().value == "4bit"
    # an older kvcap.json without the count: tokens per frame x frames
    old = {**spec, "projector": {**spec["projector"], "num_visual_tokens": None}}
    assert autotune.prompt_tokens(old) == 64 * 8 + autotune.TEMPLATE_TOKENS + prompt_bytes
