"""Reading a checkpoint directory back into a Captioner's parts (the format is kvcap.model.checkpoint's;
writing it is kvcap.model.saving's). Safetensors only: nothing is unpickled.

    parts = load_parts(path, device, quantization=None, gradient_checkpointing=False, merge_adapters=True)
    Captioner(parts.vision, parts.projector, parts.llm, parts.tokenizer, parts.spec)   # Captioner.from_checkpoint

Every step names what it reads in its one-line `CheckpointError`: the vision tower, the LLM (with
the quantization asked for), the projector rebuilt from its saved arguments and checked against
both backbones, then the LoRA adapter (merged into unquantized weights unless asked not to).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kvcap.errors import one_line
from kvcap.model import checkpoint as ckpt
from kvcap.model.llm import load_llm
from kvcap.model.trainable import is_peft_model, merge_for_inference
from kvcap.model.vision import VisionEncoder, resolve_device, resolve_dtype


@dataclass
class CheckpointParts:
    vision: VisionEncoder
    projector: Any  # kvcap.model.projectors.Projector, on the device
    llm: Any
    tokenizer: Any
    spec: ckpt.CheckpointSpec
    merged_lora: dict[str, Any] | None
    """The LoRA settings an adapter had when it was merged into the LLM's weights here, else None."""


def load_parts(path: str | Path, device: str | torch.device = "auto", quantization: str | None = None,
               gradient_checkpointing: bool = False, merge_adapters: bool = True) -> CheckpointParts:
    """The saved model's parts (see `Captioner.from_checkpoint` for the arguments)."""
    path = ckpt.resolve_checkpoint(path)
    spec = ckpt.CheckpointSpec.load(path)
    device = resolve_device(device)
    dtype = resolve_dtype(spec.llm.dtype or "auto", device)
    vision = _load_vision(path, spec, device, dtype)
    tokenizer_path = str(path / ckpt.TOKENIZER_DIR) if spec.tokenizer_bundled else None
    quant = quantization or spec.llm.quantization
    llm, tokenizer = load_llm(ckpt.backbone_source(path, spec.llm, "LLM"), quant, dtype, device,
                              gradient_checkpointing, tokenizer_path=tokenizer_path)
    projector = _load_projector(path, spec, vision, llm)
    if spec.lora:
        llm = _load_adapter(path, llm, merge_adapters)
    spec.llm.quantization = quant
    merged_lora = spec.lora if spec.lora and not is_peft_model(llm) else None
    return CheckpointParts(vision, projector.to(device), llm, tokenizer, spec, merged_lora)


def _load_vision(path: Path, spec: ckpt.CheckpointSpec, device: torch.device, dtype: torch.dtype) -> VisionEncoder:
    source = ckpt.backbone_source(path, spec.vision, "vision")
    try:
        vision = VisionEncoder(source, spec.vision.layer, spec.vision.cls, device, dtype)
    except ValueError as exc:
        raise ckpt.CheckpointError(f"{path / ckpt.SPEC_FILE}: {exc}") from None
    vision.model_id = spec.vision.id  # the feature-cache identity is the original id
    return vision


def _load_projector(path: Path, spec: ckpt.CheckpointSpec, vision: VisionEncoder, llm: Any):
    """The projector rebuilt from its saved arguments, checked against both backbones, with its weights."""
    from kvcap.model.projectors import build_projector

    projector_cfg = dict(spec.projector.config or {})
    saved_name = projector_cfg.pop("name", spec.projector.name)
    expected = {"vision_dim": vision.hidden_size, "llm_dim": llm.config.hidden_size, "patches": vision.tokens_per_frame}
    for key, actual in expected.items():
        if projector_cfg.get(key) != actual:
            raise ckpt.CheckpointError(
                f"{path}: backbone does not match the saved projector: {key} is {actual}, "
                f"the projector was trained for {projector_cfg.get(key)}"
            )
    try:
        projector = build_projector(saved_name, **projector_cfg)
    except (TypeError, ValueError) as exc:
        raise ckpt.CheckpointError(f"{path / ckpt.SPEC_FILE}: cannot rebuild projector: {exc}") from None
    state = ckpt.load_safetensors(path / ckpt.PROJECTOR_FILE, "projector weights")
    try:
        projector.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ckpt.CheckpointError(
            f"{path / ckpt.PROJECTOR_FILE}: weights do not fit the saved projector ({ckpt._one_line(exc)})"
        ) from None
    return projector


def _load_adapter(path: Path, llm: Any, merge: bool) -> Any:
    """The LLM with the checkpoint's LoRA adapter, merged into its weights where `merge` and they allow."""
    from peft import PeftModel

    adapter = ckpt.check_adapter(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
        llm = PeftModel.from_pretrained(llm, str(adapter), is_trainable=False)
    return merge_for_inference(llm) if merge else llm


def load_projector_weights(projector: Any, init: str | Path) -> None:
    """Copy the projector weights of checkpoint `init` into `projector` (stage 2 starts from stage
    1's best): the same projector type, and every name and shape matching."""
    spec = ckpt.CheckpointSpec.load(init)
    path = Path(spec.source or init)
    saved, current = spec.projector.name, projector.config()["name"]
    if saved != current:
        raise ckpt.CheckpointError(f"{path}: holds a {saved!r} projector but this run trains {current!r} "
                                   f"(set projector.name = {saved!r})")
    state = ckpt.load_safetensors(path / ckpt.PROJECTOR_FILE, "projector weights")
    try:
        projector.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ckpt.CheckpointError(f"{path / ckpt.PROJECTOR_FILE}: does not fit this projector "
                                   f"({one_line(exc)})") from None
