"""Where a training run stands: a checkpoint's position.json, and what the trainer keeps of it
while it runs (the step loop moves `step`, `epoch`, `batch`; each eval moves the `best`).

    position.json   {"stage", "step", "total_steps", "epoch", "batch", "best", "best_eval",
                     "last_eval", "previous_eval", "elapsed_s", "init"}

`batch` is the next micro-batch of `epoch`, so a resumed run reads on from exactly there; the
RNG states ride beside it in training_state.pt (kvcap.trainer.resume).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kvcap.records import _coerce as c


@dataclass
class TrainPosition:
    """A run's position at an optimizer-step boundary (position.json)."""

    stage: int | str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    """The epoch the next micro-batch belongs to."""
    batch: int = 0
    """The next micro-batch of `epoch`."""
    best: dict[str, Any] | None = None
    """{"metric", "value", "step"} of best/ so far."""
    best_eval: dict[str, Any] | None = None
    """The eval row (as written) that chose best/."""
    last_eval: dict[str, Any] | None = None
    previous_eval: dict[str, Any] | None = None
    """The last eval's metric summary (the collapse rule compares against it)."""
    elapsed_s: float = 0.0
    """Training time so far, over every invocation of this stage."""
    init: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainPosition":
        opt = lambda v: v if isinstance(v, dict) else None  # noqa: E731
        return cls(
            stage=c.stage(data.get("stage")), step=c.integer(data.get("step")),
            total_steps=c.integer(data.get("total_steps")), epoch=c.integer(data.get("epoch")),
            batch=c.integer(data.get("batch")), best=opt(data.get("best")), best_eval=opt(data.get("best_eval")),
            last_eval=opt(data.get("last_eval")), previous_eval=opt(data.get("previous_eval")),
            elapsed_s=float(c.num(data.get("elapsed_s")) or 0.0), init=c.opt_text(data.get("init")),
        )
