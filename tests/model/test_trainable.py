"""What trains is declared per component: stage 1 = projector, stage 2 = projector + LoRA."""

from __future__ import annotations

import logging

import pytest
import torch
from fixtures.model import random_features

from kvcap.config import LoraConfig, StageConfig, TrainConfig
from kvcap.model.trainable import Mode, PlanError, plan_for_stage


def _trainable(captioner) -> set[str]:
    return {name for name, p in captioner.named_parameters() if p.requires_grad}


def test_plan_for_stage_defaults():
    train = TrainConfig()
    assert plan_for_stage(train.stage1) == {"vision": Mode.FROZEN, "projector": Mode.FULL, "llm": Mode.FROZEN}
    assert plan_for_stage(train.stage2) == {"vision": Mode.FROZEN, "projector": Mode.FULL, "llm": Mode.LORA}
    assert plan_for_stage(StageConfig(projector="frozen", llm="full"))["llm"] is Mode.FULL


def test_stage1_trains_exactly_the_projector(tiny_captioner, caplog):
    with caplog.at_level(logging.INFO):
        tiny_captioner.apply_plan(plan_for_stage(TrainConfig().stage1), LoraConfig(r=4, alpha=8))
    names = _trainable(tiny_captioner)
    assert names and all(n.startswith("projector.") for n in names)
    summary = tiny_captioner.trainable_summary()
    assert summary == {"vision": 0, "projector": sum(p.numel() for p in tiny_captioner.projector.parameters()), "llm": 0}
    assert "trainable parameters: vision 0, projector" in caplog.text


def test_stage2_trains_exactly_projector_and_lora(tiny_captioner):
    tiny_captioner.apply_plan(plan_for_stage(TrainConfig().stage2), LoraConfig(r=4, alpha=8, dropout=0.0))
    names = _trainable(tiny_captioner)
    lora = {n for n in names if n.startswith("llm.")}
    assert lora and all("lora_A" in n or "lora_B" in n for n in lora)
    assert names - lora == {n for n, _ in tiny_captioner.projector.named_parameters(prefix="projector")}
    # every target module of every layer got an adapter
    expected = 2 * 7 * 2  # layers x target modules x (A, B)
    assert len(lora) == expected
    assert not any(n.startswith("vision.") for n in names)
    # gradient reaches every trainable tensor (LoRA B starts at zero, so A's grad needs a step)
    features = random_features(tiny_captioner, 2)
    opt = torch.optim.SGD([p for p in tiny_captioner.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        tiny_captioner.loss(features, ["바다", "도시의 밤"]).backward()
        opt.step()
    missing = [n for n, p in tiny_captioner.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert missing == []
    assert all(p.grad is None for p in tiny_captioner.vision.parameters())


def test_full_llm_plan_and_going_back_to_frozen(tiny_captioner):
    tiny_captioner.apply_plan({"vision": "frozen", "projector": "frozen", "llm": "full"})
    summary = tiny_captioner.trainable_summary()
    assert summary["projector"] == 0 and summary["vision"] == 0
    assert summary["llm"] == sum(p.numel() for p in tiny_captioner.llm.parameters())
    tiny_captioner.apply_plan({"vision": "frozen", "projector": "frozen", "llm": "frozen"})
    assert tiny_captioner.trainable_summary() == {"vision": 0, "projector": 0, "llm": 0}


def test_bad_plans_are_refused(tiny_captioner):
    with pytest.raises(PlanError, match="vision must stay frozen"):
        tiny_captioner.apply_plan({"vision": "full", "projector": "full", "llm": "frozen"})
    with pytest.raises(PlanError, match="not lora"):
        tiny_captioner.apply_plan({"vision": "frozen", "projector": "lora", "llm": "frozen"})
    with pytest.raises(PlanError, match="needs a LoRA config"):
        tiny_captioner.apply_plan({"vision": "frozen", "projector": "full", "llm": "lora"})
    with pytest.raises(ValueError):
        tiny_captioner.apply_plan({"vision": "frozen", "projector": "full", "llm": "half"})
