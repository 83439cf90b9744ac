"""The two training stages: presets from `[train.stage1]` / `[train.stage2]` and what each starts from.

    stage 1 (alignment):          projector FULL, LLM FROZEN        seed: lr 1e-3, 2 epochs
    stage 2 (instruction tuning): projector FULL, LLM LORA (or FULL) seed: lr 5e-5, 3 epochs,
                                  starting from stage 1's best projector

Stage 2 finds stage 1's best in the same run directory (`best/`, moved to `stage1/best/` when
stage 2 starts) or takes `--init CHECKPOINT`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kvcap.errors import KvcapError
from kvcap.errors import one_line as _one_line

if TYPE_CHECKING:
    from kvcap.model import checkpoint as ckpt

STAGES = (1, 2)


class StageError(KvcapError, ValueError):
    """A stage that cannot start as asked (one line)."""


def stage_config(train, stage: int):
    """The `StageConfig` of `stage` (1 or 2) in `train` (the config's [train] section)."""
    if stage not in STAGES:
        raise StageError(f"--stage must be 1 or 2, got {stage}")
    return train.stage1 if stage == 1 else train.stage2


def describe_stage(stage: int, s) -> str:
    """One line for stage `stage` of its `StageConfig` `s`."""
    return f"stage {stage}: projector {s.projector}, llm {s.llm}, lr {s.lr:g}, {s.epochs:g} epochs"


def load_init_projector(captioner, init: str | Path) -> "ckpt.CheckpointSpec":
    """Copy the projector weights of checkpoint `init` into `captioner` (names must match)."""
    from kvcap.model import checkpoint as ckpt

    spec = ckpt.CheckpointSpec.load(init)
    path = Path(spec.source or init)
    saved = spec.projector.name
    current = captioner.projector.config()["name"]
    if saved != current:
        raise StageError(f"{path}: holds a {saved!r} projector but this run trains {current!r} (set projector.name = {saved!r})")
    state = ckpt.load_safetensors(path / ckpt.PROJECTOR_FILE, "projector weights")
    try:
        captioner.projector.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise StageError(f"{path / ckpt.PROJECTOR_FILE}: does not fit this projector ({_one_line(exc)})") from None
    return spec
