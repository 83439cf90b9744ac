"""Writing a Captioner's parts as a checkpoint directory (the format is kvcap.model.checkpoint's;
reading it back is kvcap.model.loading's).

    save_parts(out_dir, spec, vision_path=..., projector=..., llm=..., llm_path=..., tokenizer=...)  # Captioner.save

What is bundled and what is referenced is `_placement`'s rule.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from kvcap.model import checkpoint as ckpt
from kvcap.model.tiny import is_tiny
from kvcap.model.trainable import is_peft_model

def save_parts(out_dir: str | Path, spec: ckpt.CheckpointSpec, *, vision_path: str, projector: Any, llm: Any,
               llm_path: str, tokenizer: Any, bundle_backbones: bool | None = None,
               card: dict[str, Any] | None = None) -> Path:
    """Write a captioner's parts to `out_dir` atomically (temp dir, then rename), with a model card
    (see `Captioner.save`). `spec` is the current state's (`Captioner.describe`) and is filled in
    here; `vision_path` and `llm_path` are the folders the backbones were loaded from."""
    from kvcap.fsutil import atomic_dir
    from kvcap.model.backbone import copy_model_dir
    from kvcap.model.card import write_card
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    llm_base = llm.get_base_model() if is_peft_model(llm) else llm
    with atomic_dir(out_dir) as tmp:
        state = {k: v.detach().float().contiguous().cpu() if v.is_floating_point() else v.detach().contiguous().cpu()
                 for k, v in projector.state_dict().items()}
        save_file(state, str(tmp / ckpt.PROJECTOR_FILE))
        if is_peft_model(llm):
            llm.save_pretrained(str(tmp / ckpt.ADAPTER_DIR), safe_serialization=True)
        spec.vision.bundled, spec.vision.ref = _placement(spec.vision, vision_path, bundle_backbones)
        if spec.vision.bundled:
            copy_model_dir(vision_path, tmp / ckpt.VISION_DIR)
        spec.llm.bundled, spec.llm.ref = _placement(spec.llm, llm_path, bundle_backbones)
        if spec.llm.trained_full:
            spec.llm.bundled, spec.llm.ref = True, None
            llm_base.save_pretrained(tmp / ckpt.LLM_DIR, safe_serialization=True)
            tokenizer.save_pretrained(tmp / ckpt.LLM_DIR)
        elif spec.llm.bundled:
            # Untrained base weights: copy the files we loaded (exact, and never the LoRA
            # layers peft injected into the live model).
            copy_model_dir(llm_path, tmp / ckpt.LLM_DIR)
        if spec.tokenizer_bundled:
            tokenizer.save_pretrained(tmp / ckpt.TOKENIZER_DIR)
        spec.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        spec.card = card if card is not None else spec.card
        spec.save(tmp)
        write_card(tmp, spec, spec.card)
    return out_dir


def _placement(part: "ckpt.VisionSpec | ckpt.LlmSpec", loaded_from: str, bundle: bool | None) -> tuple[bool, dict[str, Any] | None]:
    """(bundled, reference) for a backbone: `tiny:` ids bundled, local folders referenced (or
    bundled when asked), hub ids neither. A backbone loaded through a reference stays local even
    when its id was a path relative to another working directory."""
    from kvcap.model.backbone import reference

    if is_tiny(part.id):
        return bundle is not False, None
    folder = next((Path(str(p)).expanduser() for p in (loaded_from, part.id, (part.ref or {}).get("path"))
                   if p and Path(str(p)).expanduser().is_dir()), None)
    if folder is None and not part.ref:
        return False, None
    if bundle:
        return True, None
    return False, reference(folder) if folder is not None else part.ref
