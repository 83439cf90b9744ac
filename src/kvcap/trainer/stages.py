"""The two training stages: presets from `[train.stage1]` / `[train.stage2]` and what each starts from.

    stage 1 (alignment):          projector FULL, LLM FROZEN        seed: lr 1e-3, 2 epochs
    stage 2 (instruction tuning): projector FULL, LLM LORA (or FULL) seed: lr 5e-5, 3 epochs,
                                  starting from stage 1's best projector

Stage 2 finds stage 1's best in the same run directory (`best/`, moved to `stage1/best/` when
stage 2 starts) or takes `--init CHECKPOINT`; the captioner loads that projector's weights
(kvcap.model.loading.load_projector_weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kvcap.errors import KvcapError

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


def stage_captioner(model, projector, generation, lora, train, stage: int, stage_cfg, device, init_path: Path | None,
                    *, say: Callable[[str], None]):
    """(the captioner, its trainable parameter counts) for `stage` (its `StageConfig` `stage_cfg`)
    from the [model], [projector], [generation], [lora] and [train] sections: seeded with
    train.seed, stage 2's starting projector loaded from `init_path`, the stage's plan applied."""
    from kvcap.model.captioner import Captioner
    from kvcap.model.trainable import plan_for_stage

    captioner = Captioner.from_sections(model, projector, generation, train.max_caption_tokens, device=device,
                                        seed=train.seed, plan=plan_for_stage(stage_cfg), lora=lora,
                                        init_projector=init_path)
    trainable = captioner.trainable_summary()
    if not sum(trainable.values()):
        raise StageError(f"train.stage{stage}: nothing trains (projector and llm both frozen)")
    if init_path is not None:
        say(f"stage {stage}: starting from the projector of {init_path}")
    say("trainable: " + ", ".join(f"{k} {v:,}" for k, v in trainable.items()))
    return captioner, trainable
