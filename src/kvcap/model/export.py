"""`kvcap export CKPT OUT [--bundle]`: a copy of a checkpoint to share or move.

Without `--bundle` the copy references local backbones where the original does (same machine);
with it, referenced backbone folders are put inside the copy (hard links where the file system
allows, else copies), so the folder is portable. Either way the model card is written again to
say where each backbone is. Torch-free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kvcap.model import checkpoint as ckpt
from kvcap.model.backbone import BackboneError, check_reference, copy_model_dir


def export_checkpoint(source: str | Path, out: str | Path, *, bundle: bool = False) -> tuple[Path, ckpt.CheckpointSpec]:
    """Copy checkpoint `source` to `out` (which must not exist); returns (out, the copy's spec)."""
    from kvcap.fsutil import atomic_dir
    from kvcap.model.card import write_card

    spec = ckpt.CheckpointSpec.load(source)
    src = Path(spec.source or source)
    out = Path(out)
    if out.exists():
        raise ckpt.CheckpointError(f"{out}: already exists (export writes a new folder)")
    parts = ((spec.vision, ckpt.VISION_DIR, "vision"), (spec.llm, ckpt.LLM_DIR, "LLM"))
    try:
        folders = {what: check_reference(part.ref, what, src / ckpt.SPEC_FILE) for part, _, what in parts if part.ref}
    except BackboneError as exc:
        raise ckpt.CheckpointError(str(exc)) from None
    with atomic_dir(out) as tmp:
        for item in src.iterdir():
            if item.name in (ckpt.SPEC_FILE, ckpt.CARD_FILE) or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        if bundle:
            for part, dirname, what in parts:
                if part.ref:
                    copy_model_dir(folders[what], tmp / dirname, link=True)
                    part.bundled, part.ref = True, None
        spec.save(tmp)
        write_card(tmp, spec, spec.card)
    return out, spec
