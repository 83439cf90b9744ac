"""4-bit and 8-bit LLMs on CPU: lm_head stays full precision; LoRA forward/backward/generate work;
the bitsandbytes AVX512-BF16 repacking trap is switched off."""

from __future__ import annotations

import pytest
import torch
from fixtures.model import random_features
from torch import nn

from kvcap.config import GenerationConfig, TrainConfig
from kvcap.model.trainable import plan_for_stage

bnb = pytest.importorskip("bitsandbytes")


def _captioner(quantization):
    from fixtures.model import make_tiny_config

    from kvcap.model.captioner import Captioner

    torch.manual_seed(0)
    cfg = make_tiny_config({"model.quantization": quantization})
    captioner = Captioner.from_config(cfg, device="cpu")
    captioner.apply_plan(plan_for_stage(TrainConfig().stage2), cfg.lora)
    return captioner


def _lora_grads(captioner, features, captions):
    captioner.train()
    captioner.zero_grad(set_to_none=True)
    captioner.loss(features, captions).backward()
    return {n: p.grad.clone() for n, p in captioner.named_parameters() if p.requires_grad and "lora_" in n}


@pytest.mark.parametrize("quantization, layer_type", [("4bit", "Linear4bit"), ("8bit", "Linear8bitLt")])
def test_quantized_lora_forward_backward_generate(tiny_models, quantization, layer_type):
    captioner = _captioner(quantization)
    llm_modules = list(captioner.llm.modules())
    assert any(type(m).__name__ == layer_type for m in llm_modules)
    lm_head = captioner.llm.get_output_embeddings()
    assert type(lm_head) is nn.Linear and lm_head.weight.dtype == torch.float32  # never quantized
    assert all(p.dtype == torch.float32 for p in captioner.projector.parameters())
    features = random_features(captioner, 2)
    # a few steps move the LoRA weights (B starts at zero) so every adapter gets gradient
    opt = torch.optim.AdamW([p for p in captioner.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        grads = _lora_grads(captioner, features, ["바다", "도시의 밤"])
        opt.step()
    assert grads and all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())
    texts = captioner.generate(features, GenerationConfig(max_new_tokens=5))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_avx512bf16_repack_is_disabled_on_every_4bit_layer(tiny_models, monkeypatch):
    """Pretend the CPU has AVX512-BF16 (as the machines where the trap was measured): the loader
    must still leave every Linear4bit with the CPU repack switched off."""
    import bitsandbytes.nn.modules as bnb_modules

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    captioner = _captioner("4bit")
    layers = [m for m in captioner.llm.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7
    assert not any(layer.support_avx512bf16_for_cpu for layer in layers)


def test_lora_gradients_unchanged_by_an_eval_pass(tiny_models):
    """The measured bug: after a no-grad eval forward, LoRA gradients on a 4-bit model went wrong."""
    captioner = _captioner("4bit")
    features = random_features(captioner, 2)
    captions = ["맑은 하늘 아래 바다", "비 오는 도시의 밤"]
    opt = torch.optim.AdamW([p for p in captioner.parameters() if p.requires_grad], lr=1e-2)
    _lora_grads(captioner, features, captions)
    opt.step()  # non-zero LoRA B, so every adapter's gradient is informative
    before = _lora_grads(captioner, features, captions)
    captioner.eval()
    with torch.no_grad():
        captioner.loss(features, captions)
        captioner.generate(features, GenerationConfig(max_new_tokens=3))
    after = _lora_grads(captioner, features, captions)
    assert before.keys() == after.keys() and before
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-4, atol=1e-6, msg=name)
