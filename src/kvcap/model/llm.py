"""Loading the language model: full precision or bitsandbytes 8-/4-bit, lm_head never quantized.

Also the guard against bitsandbytes 0.50's CPU repacking trap (see `disable_cpu_weight_repack`).
"""

from __future__ import annotations

import sys
import warnings

import torch
from torch import nn

from kvcap.config import QUANTIZATIONS, ConfigError  # the one list of LLM weight formats

# Modules bitsandbytes must leave in full precision.
NEVER_QUANTIZED = ["lm_head"]


def quantization_config(quantization: str, compute_dtype: torch.dtype):
    """The BitsAndBytesConfig for `8bit` / `4bit` (None for `none`)."""
    from transformers import BitsAndBytesConfig

    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"model.quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "none":
        return None
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=NEVER_QUANTIZED)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=NEVER_QUANTIZED,
    )


def disable_cpu_weight_repack(model: nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel.

    bitsandbytes 0.50 on CPUs with AVX512-BF16: the first no-grad forward of a `Linear4bit`
    in eval mode repacks its weight into a CPU-only layout whose kernel has no backward. Every
    later training step then gets silently wrong LoRA gradients (measured up to 70% off; the
    only sign is a "gemv_4bit ... autograd kernel was not registered" warning). Turning the
    feature off on every layer keeps one layout for both eval and training. Returns the number
    of layers touched.
    """
    if "bitsandbytes" not in sys.modules:
        # Nothing loaded bitsandbytes, so no layer is quantized; importing it here would cost
        # ~1.7 s of start-up (it pulls torch's compiler) for an unquantized model.
        return 0
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:  # bitsandbytes missing: nothing can be quantized anyway
        return 0
    count = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def is_checkpointing(model: nn.Module) -> bool:
    """Whether activation (gradient) checkpointing is on, across transformers versions."""
    flag = getattr(model, "is_activation_checkpointing", None)
    if flag is None:
        flag = getattr(model, "is_gradient_checkpointing", False)
    return bool(flag)


def is_quantized(model: nn.Module) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def load_tokenizer(source: str):
    """The tokenizer in `source`: a folder or hub id that loadable_source() has already passed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        # Padding positions are masked out; any token id will do, EOS is conventional.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_llm(
    model_id: str,
    quantization: str,
    dtype: torch.dtype,
    device: torch.device,
    gradient_checkpointing: bool = False,
    tokenizer_path: str | None = None,
):
    """Load a causal LM and its tokenizer -> (model, tokenizer).

    `model_id` is a hub id, a local directory or `tiny:qwen3`. `device` and `dtype` come resolved
    (kvcap.model.vision.resolve_device / resolve_dtype: `auto` = bf16 on GPU, fp32 on CPU); the
    4-bit compute dtype follows `dtype`. The model comes back frozen and in eval mode;
    `trainable.apply_plan` decides what trains.
    """
    from transformers import AutoModelForCausalLM

    from kvcap.model.hub import loadable_source

    path = loadable_source(model_id, "model.llm")
    kwargs = {"dtype": dtype}
    bnb_config = quantization_config(quantization, dtype)
    if bnb_config is not None:
        kwargs["quantization_config"] = bnb_config
        kwargs["device_map"] = {"": device}
        if quantization == "8bit":
            # Int8 matmul runs in fp16 internally; the cast it announces is expected.
            warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if bnb_config is None:
        model.to(device)
    disable_cpu_weight_repack(model)
    model.requires_grad_(False)
    model.eval()
    if gradient_checkpointing:
        enable_gradient_checkpointing(model)
    tokenizer = load_tokenizer(tokenizer_path or path)
    return model, tokenizer


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute activations in backward (non-reentrant, so frozen inputs_embeds work)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # With a frozen embedding table the checkpointed blocks would see inputs without grad;
    # this makes the embedding output require grad so gradients flow to LoRA/projector.
    model.enable_input_require_grads()
    model.config.use_cache = False
