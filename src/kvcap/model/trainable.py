"""What trains, declared per component (vision, projector, llm) rather than scattered.

    plan_for_stage(cfg.train.stage2) -> {"vision": FROZEN, "projector": FULL, "llm": LORA}
    apply_plan(vision, projector, llm, plan, lora_cfg) -> llm (wrapped by peft for LORA)

The vision tower is always FROZEN. LoRA adapters come from peft; on a quantized LLM the
adapters train in fp32 on top of frozen 4-/8-bit weights (the base weights are not upcast).
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from torch import nn

from kvcap.errors import KvcapError

logger = logging.getLogger(__name__)

COMPONENTS = ("vision", "projector", "llm")


class Mode(str, enum.Enum):
    """How a component trains; the values are the words users write in `train.stageN`."""

    FROZEN = "frozen"
    LORA = "lora"
    FULL = "full"


class PlanError(KvcapError, ValueError):
    """A training plan the model cannot follow (one line)."""


def plan_for_stage(stage: Any) -> dict[str, Mode]:
    """A `kvcap.config.StageConfig` -> {component: Mode}; vision is always FROZEN."""
    return {"vision": Mode.FROZEN, "projector": Mode(stage.projector), "llm": Mode(stage.llm)}


def check_plan(plan: dict[str, Mode | str]) -> dict[str, Mode]:
    plan = {name: Mode(mode) for name, mode in plan.items()}
    missing = [c for c in COMPONENTS if c not in plan]
    if missing or set(plan) - set(COMPONENTS):
        raise PlanError(f"a training plan names exactly {', '.join(COMPONENTS)}, got {', '.join(plan)}")
    if plan["vision"] is not Mode.FROZEN:
        raise PlanError(f"vision must stay frozen, got {plan['vision'].value}")
    if plan["projector"] is Mode.LORA:
        raise PlanError("projector trains full or frozen, not lora")
    return plan


def is_peft_model(model: nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def merge_for_inference(llm: nn.Module) -> nn.Module:
    """Fold LoRA adapters into unquantized weights for generation; quantized LLMs keep theirs.

    Every adapted layer otherwise runs two extra matmuls and peft's Python wrapper at each
    decoded token (bench/gpu.py section caption_lora measures the difference). Merging into
    4-bit / 8-bit weights would dequantize and requantize them, which changes the model, so
    those stay wrapped. The result trains no further adapter: inference only.
    """
    from kvcap.model.llm import is_quantized

    if is_peft_model(llm) and not is_quantized(llm.get_base_model()):
        return llm.merge_and_unload()
    return llm


def lora_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if "lora_" in n]


def peft_lora_config(lora: Any):
    """kvcap.config.LoraConfig -> peft.LoraConfig for a causal LM."""
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def apply_plan(vision: nn.Module, projector: nn.Module, llm: nn.Module, plan: dict, lora: Any = None) -> nn.Module:
    """Set requires_grad per the plan; returns the LLM (peft-wrapped when LoRA is first added)."""
    from kvcap.model.llm import (
        disable_cpu_weight_repack,
        is_checkpointing,
        is_quantized,
    )

    plan = check_plan(plan)
    vision.requires_grad_(False)
    projector.requires_grad_(plan["projector"] is Mode.FULL)

    mode = plan["llm"]
    base = llm.get_base_model() if is_peft_model(llm) else llm
    if mode is Mode.FULL:
        if is_quantized(base):
            raise PlanError("the LLM cannot train FULL while quantized; set model.quantization = \"none\"")
        if is_peft_model(llm):
            # Fold the adapters into the weights and train the plain model.
            llm = llm.merge_and_unload()
        llm.requires_grad_(True)
    elif mode is Mode.LORA:
        if not is_peft_model(llm):
            if lora is None:
                raise PlanError("llm = lora needs a LoRA config")
            import warnings

            from peft import get_peft_model

            with warnings.catch_warnings():
                # peft 0.21 still asks transformers 5 for the deprecated checkpointing flag name.
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
                llm = get_peft_model(llm, peft_lora_config(lora))
        llm.requires_grad_(False)
        for _, param in lora_parameters(llm):
            param.requires_grad_(True)
        # peft builds new modules; keep bitsandbytes' CPU repack off on all of them.
        disable_cpu_weight_repack(llm)
    else:
        llm.requires_grad_(False)
    if mode is not Mode.FROZEN and is_checkpointing(base):
        # inputs_embeds from the projector already require grad, but the prompt's text embeddings
        # come from a frozen table: make checkpointed blocks see a grad-requiring input anyway.
        base.enable_input_require_grads()
    return llm


def count_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def format_summary(summary: dict[str, int]) -> str:
    """One log line: `trainable parameters: vision 0, projector 4.2M, llm 21.0M (LoRA)`."""
    parts = [f"{name} {_human(count)}" for name, count in summary.items()]
    return "trainable parameters: " + ", ".join(parts) + f" (total {_human(sum(summary.values()))})"


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
