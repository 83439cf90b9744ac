"""Resumable training checkpoints: `runs/<name>/checkpoints/step-<N>/`.

    trainable.safetensors   every parameter that trains (by name), nothing frozen
    training_state.pt       optimizer + scheduler state, RNG states (python, numpy, torch, cuda)
                            — plain tensors/lists/dicts, loaded with `weights_only=True`
    position.json           kvcap.records.TrainPosition: stage, step, total_steps, epoch, batch
                            (next micro-batch of that epoch), best-so-far, previous eval summary,
                            elapsed train time

A checkpoint is always taken at an optimizer-step boundary, so there is no half-accumulated
gradient to carry. Written to a temp dir and renamed (`atomic_dir`); the last `keep_last` are kept.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from kvcap.errors import KvcapError
from kvcap.errors import one_line as _one_line
from kvcap.fsutil import atomic_dir, atomic_write_json
from kvcap.records import TrainPosition

STEP_DIR = re.compile(r"^step-(\d+)$")


class ResumeError(KvcapError, ValueError):
    """No usable checkpoint to resume from (one line, names the path)."""


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (+CUDA) RNG states, as weights_only-loadable objects."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model) -> dict[str, Any]:
    """name -> tensor for every parameter with requires_grad (CPU, contiguous)."""
    return {n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def list_checkpoints(checkpoints_dir: str | Path) -> list[tuple[int, Path]]:
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = STEP_DIR.match(child.name)
        if m and child.is_dir() and (child / "position.json").is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def save_checkpoint(
    checkpoints_dir: str | Path, *, model, optimizer, scheduler, position: dict[str, Any], keep_last: int
) -> Path:
    """Write `step-<N>` atomically, then drop the oldest beyond `keep_last`."""
    import torch
    from safetensors.torch import save_file

    target = Path(checkpoints_dir) / f"step-{int(position['step'])}"
    with atomic_dir(target) as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
                   tmp / "training_state.pt")
        atomic_write_json(tmp / "position.json", position)
    for _, old in list_checkpoints(checkpoints_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    # Temp dirs of a save that was killed half-way (only rank 0 of one run writes here).
    for debris in Path(checkpoints_dir).glob(".step-*"):
        shutil.rmtree(debris, ignore_errors=True)
    return target


def latest_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    found = list_checkpoints(checkpoints_dir)
    return found[-1][1] if found else None


def read_position(checkpoint: str | Path) -> dict[str, Any]:
    path = Path(checkpoint) / "position.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{path}: unreadable checkpoint position ({exc})") from None


def load_checkpoint(checkpoint: str | Path, *, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer and scheduler in place; returns (position, rng state)."""
    import torch
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    try:
        weights = load_file(str(checkpoint / "trainable.safetensors"))
        training = torch.load(checkpoint / "training_state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a torn or foreign checkpoint: say which
        raise ResumeError(f"{checkpoint}: cannot load checkpoint ({_one_line(exc)})") from None
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != expected:
        missing = sorted(expected - set(weights))[:3]
        extra = sorted(set(weights) - expected)[:3]
        raise ResumeError(
            f"{checkpoint}: trainable parameters do not match this model (missing {missing}, unexpected {extra}); "
            "was the config changed since the run started?"
        )
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(training["optimizer"])
    scheduler.load_state_dict(training["scheduler"])
    position = read_position(checkpoint)
    position["_rng"] = training["rng"]
    return position


def restore_position(checkpoints_dir: str | Path, fresh: TrainPosition, *, model, optimizer, scheduler, rank: int,
                     seed: int, say: Callable[[str], None]) -> TrainPosition:
    """Restore the latest checkpoint of this stage in place (weights, optimizer, scheduler, and on
    rank 0 the RNG states; other ranks reseed by step); returns its position, with this run's
    schedule (`fresh.total_steps`) and start (`fresh.init`)."""
    import torch

    checkpoint = latest_checkpoint(checkpoints_dir)
    saved = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler)
    found = TrainPosition.from_dict(saved)
    if str(found.stage) != str(fresh.stage):
        raise ResumeError(f"{checkpoint}: is a stage {saved.get('stage')} checkpoint, not stage {fresh.stage}")
    if saved.get("total_steps", fresh.total_steps) != fresh.total_steps:
        say(f"warning: the schedule changed since {checkpoint} ({saved.get('total_steps')} -> {fresh.total_steps} steps)")
    if rank == 0:
        set_rng_state(saved["_rng"])
    else:
        torch.manual_seed(seed + 7919 * rank + found.step)
    say(f"resumed from {checkpoint}: step {found.step}/{fresh.total_steps}, epoch {found.epoch}, batch {found.batch}")
    return dataclasses.replace(found, total_steps=fresh.total_steps, init=fresh.init)


def start_position(checkpoints_dir: str | Path, stage: int, schedule, init_path: Path | None, *, resume: bool,
                   model, optimizer, scheduler, seed: int, say: Callable[[str], None]) -> TrainPosition:
    """Step 0 of `schedule` (a kvcap.trainer.steps.Schedule), or with `resume` the last checkpoint
    restored (weights, optimizer, scheduler, RNG, data position)."""
    import torch

    fresh = TrainPosition(stage=stage, total_steps=schedule.total_steps, init=str(init_path) if init_path else None)
    if resume:
        return restore_position(checkpoints_dir, fresh, model=model, optimizer=optimizer, scheduler=scheduler,
                                rank=schedule.rank, seed=seed, say=say)
    if schedule.rank:
        torch.manual_seed(seed + schedule.rank)  # dropout differs per rank, as in any DDP run
    return fresh
