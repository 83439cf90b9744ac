"""The pieces of the step loop that hold no run state: the loss module DDP wraps, the optimizer
and its schedule, the step schedule, the per-invocation step log (progress bar, timers, peak
memory), SIGTERM as Ctrl-C."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from kvcap.records import TrainRow, utc_now


class CaptionLoss(nn.Module):
    """`forward(features, captions) -> loss`, so DDP (which hooks `forward`) syncs the gradients."""

    def __init__(self, captioner: nn.Module):
        super().__init__()
        self.captioner = captioner

    def forward(self, features: torch.Tensor, captions: list[str]) -> torch.Tensor:
        return self.captioner.loss(features, captions)


def make_optimizer(captioner: nn.Module, acc: Any, *, lr: float, train: Any, total_steps: int) -> tuple:
    """(the loss module as DDP wraps it, AdamW as accelerate wraps it, the plain AdamW, the cosine
    LR schedule with warmup) for the trainable parameters; `train` is the config's [train]
    (weight_decay, warmup_ratio)."""
    from transformers import get_cosine_schedule_with_warmup

    params = [p for p in captioner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=train.weight_decay)
    model = acc.prepare_model(CaptionLoss(captioner), device_placement=False)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(train.warmup_ratio * total_steps), total_steps)
    return model, acc.prepare_optimizer(optimizer, device_placement=False), optimizer, scheduler


@dataclass(frozen=True)
class Schedule:
    """How many steps a stage takes, on this rank of `world`."""

    world: int
    rank: int
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    num_epochs: int


def plan_schedule(n_train: int, *, epochs: float, batch_size: int, grad_accum: int, max_steps: int,
                  rank: int, world: int) -> Schedule:
    """Steps per epoch (an optimizer step per `grad_accum` micro-batches) and in all, capped by `max_steps`."""
    # kvcap.trainer.features.epoch_order pads the clips to a multiple of `world` and gives every
    # rank the same share: ceil(n / world) clips, in batches of `batch_size`.
    per_rank = -(-n_train // world) if n_train > 0 else 0
    batches = -(-per_rank // batch_size)
    per_epoch = math.ceil(batches / grad_accum)
    total = math.ceil(epochs * per_epoch)
    if max_steps:
        total = min(total, max_steps)
    total = max(1, total)
    return Schedule(world=world, rank=rank, batches_per_epoch=batches, steps_per_epoch=per_epoch,
                    total_steps=total, num_epochs=math.ceil(total / per_epoch))


@dataclass
class StepLog:
    """One invocation's pace: the progress bar, its timers, the clips since the last `train` row."""

    bar: Any
    elapsed_before: float = 0.0
    """Training time of earlier invocations of this stage (a resumed run)."""
    start: float = field(default_factory=time.perf_counter)
    loop_s: float = 0.0
    """Time in the step loop alone (no eval, no checkpoints): what bench/train.py compares."""
    last_log_time: float = field(default_factory=time.perf_counter)
    clips_since_log: int = 0
    last_state_write: float = 0.0

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.start)

    def train_row(self, acc, world: int, *, stage: int, step: int, epoch: float, loss: float, lr: float,
                  grad_norm: float) -> TrainRow:
        """The `train` row since the last one: the loss averaged over ranks, clips/s summed over them."""
        stats = torch.tensor([loss, float(self.clips_since_log)], device=acc.device)
        stats = acc.reduce(stats, reduction="sum") if world > 1 else stats
        now = time.perf_counter()
        row = TrainRow(stage=stage, step=step, epoch=epoch, loss=float(stats[0]) / world, lr=lr, grad_norm=grad_norm,
                       samples_per_s=round(float(stats[1]) / max(now - self.last_log_time, 1e-9), 3),
                       mem_mb=memory_mb(acc.device), time=utc_now())
        self.last_log_time, self.clips_since_log = now, 0
        self.bar.set_postfix(loss=f"{row.loss:.4f}", lr=f"{lr:.2e}")
        return row


def memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA's allocator on a GPU, the process's max RSS on CPU."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
    except (ImportError, OSError):  # pragma: no cover - non-Unix
        return 0.0


def progress_bar(total: int, desc: str, *, initial: int = 0, disable: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step" if desc.startswith("stage") else "clip",
                disable=disable or not sys.stderr.isatty(), file=sys.stderr, dynamic_ncols=True, leave=False)


def default_log(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """`kill PID` ends the run like Ctrl-C: state.json says `interrupted`."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
