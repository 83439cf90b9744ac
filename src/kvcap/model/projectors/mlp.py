"""Per-patch projectors (LLaVA): every patch of every frame becomes one LLM token, V = T * N."""

from __future__ import annotations

import torch
from torch import nn

from kvcap.model.projectors.base import Projector


class _PerPatch(Projector):
    """Shared shape logic: apply ``self.net`` to each patch token, keep frames x patches tokens."""

    net: nn.Module

    @property
    def num_visual_tokens(self) -> int:
        return self.frames * self.patches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)  # (B, T, N, Dv)
        b = x.shape[0]
        return self.net(x).reshape(b, self.num_visual_tokens, self.llm_dim)  # (B, T*N, Dl)


class LinearProjector(_PerPatch):
    """LLaVA-1's projector: one ``Linear(Dv, Dl)`` per token (Dv*Dl + Dl parameters)."""

    name = "linear"

    def __init__(self, vision_dim: int, llm_dim: int, frames: int, patches: int) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches)
        self.net = nn.Linear(vision_dim, llm_dim)


class MLP2xGeluProjector(_PerPatch):
    """LLaVA-1.5's ``mlp2x_gelu``: ``Linear(Dv, Dl) -> GELU -> Linear(Dl, Dl)`` per token."""

    name = "mlp2x_gelu"

    def __init__(self, vision_dim: int, llm_dim: int, frames: int, patches: int) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches)
        self.net = nn.Sequential(nn.Linear(vision_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))
