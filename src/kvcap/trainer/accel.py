"""The launch and the accelerator, and the digest of the weights that DDP ranks must agree on."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def launch_state():
    """This process's place in the launch (rank, main or not, the barrier): accelerate's
    PartialState as the Accelerator will hold it (CPU without CUDA), so it may be taken first."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(dtype: str):
    """An Accelerator for model.dtype `dtype`: CPU fp32 without CUDA; bf16 autocast on GPU (fp16
    if asked, or no bf16)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    cuda = torch.cuda.is_available()
    mixed = "no"
    if cuda and dtype in ("auto", "bf16"):
        mixed = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif cuda and dtype == "fp16":
        mixed = "fp16"
    return Accelerator(cpu=not cuda, mixed_precision=mixed,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])


def weights_digest(model: nn.Module) -> str:
    """sha256 over every trainable tensor's bytes, in name order (DDP ranks must agree)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
