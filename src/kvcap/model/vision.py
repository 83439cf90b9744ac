"""The frozen vision tower: uint8 frames -> per-frame patch features.

Loads a CLIP vision model by hub id or local directory (`tiny:clip` too) and preprocesses in
torch with the model's own image-processor settings (mean, std, crop size), so no torchvision
or PIL round trip is needed: the video sampler already decoded frames at the encoder's size.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging as hf_logging

from kvcap.config import CLS_CHOICES  # the one list (config/constraints.py)
from kvcap.errors import DeviceError, KvcapError, one_line

# transformers draws a bar per weight-loading pass; kvcap's commands report their own progress,
# and those bars would interleave with it (the LLM and captioner modules import this one).
hf_logging.disable_progress_bar()

# Used when a model ships no preprocessor config (CLIP's published constants).
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """`auto` -> CUDA when present, else CPU; CUDA asked for where there is none is a ValueError.

    A bare `cuda` gets an explicit index (bitsandbytes' device_map and tensor comparisons need
    one): under `accelerate launch` / `torchrun` the process's own GPU (LOCAL_RANK), which also
    becomes the current CUDA device.
    """
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device}: CUDA is not available here (use cpu or auto)")
        if device.index is None:
            if "LOCAL_RANK" in os.environ:
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            device = torch.device("cuda", torch.cuda.current_device())
    return device


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto`/None -> bf16 on GPU (fp16 where bf16 is unsupported), fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in _DTYPES:
        raise VisionModelError(f"unknown dtype {dtype!r} (valid: auto, {', '.join(_DTYPES)})")
    return _DTYPES[dtype]


def _processor_settings(path: str) -> dict[str, Any]:
    """mean/std/rescale from the model's preprocessor config (CLIP defaults if it has none)."""
    from transformers.image_processing_utils import ImageProcessingMixin

    try:
        settings, _ = ImageProcessingMixin.get_image_processor_dict(path)
    except (OSError, ValueError):
        settings = {}
    return {
        "mean": tuple(settings.get("image_mean") or _CLIP_MEAN),
        "std": tuple(settings.get("image_std") or _CLIP_STD),
        "rescale": float(settings.get("rescale_factor") or 1 / 255),
    }


class VisionModelError(KvcapError, ValueError):
    """A vision tower that cannot be loaded as asked (one line naming it)."""


class VisionEncoder(nn.Module):
    """A frozen CLIP vision tower; `encode` maps (B, T, S, S, 3) uint8 -> (B, T, N, D)."""

    def __init__(
        self,
        model_id: str,
        layer: int = -2,
        cls: str = "drop",
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "auto",
    ):
        super().__init__()
        from transformers import CLIPVisionModel

        if cls not in CLS_CHOICES:
            raise VisionModelError(f"vision cls must be one of {', '.join(CLS_CHOICES)}, got {cls!r}")
        self.model_id = str(model_id)
        self.layer = int(layer)
        self.cls = cls
        device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, device)
        from kvcap.model.hub import loadable_source

        path = loadable_source(self.model_id, "model.vision")
        self.path = path  # the folder or hub id actually loaded
        try:
            self.model = CLIPVisionModel.from_pretrained(path, dtype=self.dtype).to(device)
        except OSError as exc:  # the hub's or transformers' "can't load": name the model
            raise VisionModelError(f"vision model {self.model_id}: {one_line(exc, limit=200, first_line=True)}") from None
        self.model.eval()
        self.model.requires_grad_(False)
        config = self.model.config
        self.image_size = int(config.image_size)
        self.hidden_size = int(config.hidden_size)
        self.patch_size = int(config.patch_size)
        n_layers = config.num_hidden_layers
        if not -(n_layers + 1) <= self.layer <= n_layers:
            raise VisionModelError(f"vision layer {self.layer} out of range for {self.model_id} ({n_layers} layers)")
        self.patches_per_frame = (self.image_size // self.patch_size) ** 2
        self.tokens_per_frame = self.patches_per_frame + (1 if cls == "keep" else 0)
        settings = _processor_settings(path)
        self.rescale = settings["rescale"]
        # Buffers (not parameters): never trained. Made on `device` itself: `self.device` reads
        # them, and the encoder is never moved as a whole (only its CLIP was, above).
        self.register_buffer("mean", torch.tensor(settings["mean"], device=device).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(settings["std"], device=device).view(1, 3, 1, 1), persistent=False)
        # Frames per forward pass, to bound activation memory on long batches.
        self.chunk_frames = 64

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def key(self) -> str:
        """Identity of this encoder's features, for the feature cache."""
        return f"{self.model_id}|layer={self.layer}|cls={self.cls}|size={self.image_size}"

    def train(self, mode: bool = True) -> "VisionEncoder":
        # Always frozen: a parent's .train() must not switch dropout etc. on.
        return super().train(False)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, H, W, 3) uint8 -> (F, 3, S, S) normalised pixels in the encoder's dtype."""
        x = frames.to(self.device).permute(0, 3, 1, 2).float()  # (F, 3, H, W)
        height, width = x.shape[-2:]
        size = self.image_size
        if (height, width) != (size, size):
            # Shortest side to `size`, then a centre crop (what the video sampler does).
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
            top, left = (new_h - size) // 2, (new_w - size) // 2
            x = x[:, :, top : top + size, left : left + size].clamp(0, 255)
        x = x * self.rescale
        x = (x - self.mean) / self.std
        return x.to(self.dtype)

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, T, S, S, 3) uint8 frames -> (B, T, N, D) features in the encoder's dtype."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (B, T, S, S, 3), got {tuple(frames.shape)}")
        batch, steps = frames.shape[:2]
        flat = frames.reshape(batch * steps, *frames.shape[2:])  # (B*T, S, S, 3)
        outputs = []
        for start in range(0, flat.shape[0], self.chunk_frames):
            pixels = self.preprocess(flat[start : start + self.chunk_frames])
            hidden = self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[self.layer]
            if self.cls == "drop":
                hidden = hidden[:, 1:]  # CLS is token 0
            outputs.append(hidden)
        features = torch.cat(outputs)  # (B*T, N, D)
        return features.reshape(batch, steps, *features.shape[1:])

    def forward(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.encode(frames)
