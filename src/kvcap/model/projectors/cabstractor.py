"""Honeybee's C-Abstractor (Cha et al., 2024), per frame, with learned frame embeddings.

Each frame's N patch tokens are laid out on their sqrt(N) x sqrt(N) grid (the CLS token must be
dropped), run through RegNet bottleneck blocks (1x1 conv -> depthwise 3x3 conv -> squeeze-
excitation -> 1x1 conv, residual; LayerNorm2d and SiLU), adaptively average-pooled to an
h x w grid, run through more blocks, and read out to the LLM width by an MLP. Convolution
keeps local structure that a resampler's attention loses, at a fixed token budget.

Honeybee builds its blocks from timm's ``RegStage``/``Bottleneck`` with ``LayerNorm2d``; they
are written here in plain torch (a few dozen lines) rather than adding timm as a dependency
for two classes. Same structure: bottle ratio 1, group size 1 (depthwise 3x3), SE ratio 0.25
of the block's input width, conv without bias followed by the norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kvcap.model.projectors.base import PoolingProjector


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map (timm's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class ConvNormAct(nn.Sequential):
    """Conv (no bias) -> LayerNorm2d -> SiLU (or no activation)."""

    def __init__(self, cin: int, cout: int, kernel: int, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
            LayerNorm2d(cout),
        ]
        if act:
            layers.append(nn.SiLU())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (timm's SEModule)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(gate))))


class RegBottleneck(nn.Module):
    """RegNet bottleneck block with SE (timm ``regnet.Bottleneck``, bottle ratio 1, group size 1)."""

    def __init__(self, cin: int, cout: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 1)
        self.conv2 = ConvNormAct(cout, cout, 3, groups=cout)  # depthwise 3x3
        self.se = SqueezeExcite(cout, max(1, round(cin * se_ratio)))
        self.conv3 = ConvNormAct(cout, cout, 1, act=False)
        self.shortcut = nn.Identity() if cin == cout else ConvNormAct(cin, cout, 1, act=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, Cin, H, W) -> (B, Cout, H, W)
        y = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act(y + self.shortcut(x))


def reg_stage(depth: int, cin: int, cout: int) -> nn.Sequential:
    """``depth`` bottleneck blocks, the first one changing the width (timm ``RegStage``)."""
    return nn.Sequential(*(RegBottleneck(cin if i == 0 else cout, cout) for i in range(depth)))


def pooled_grid(count: int) -> tuple[int, int]:
    """The most square h x w (h <= w) with h * w == count: 8 -> (2, 4), 16 -> (4, 4), 7 -> (1, 7)."""
    h = max(d for d in range(1, math.isqrt(count) + 1) if count % d == 0)
    return h, count // h


class CAbstractorProjector(PoolingProjector):
    """Honeybee C-Abstractor per frame: (B, T, N, Dv) -> (B, T * h * w, Dl).

    Args:
        num_tokens: visual tokens for the whole clip; each frame gets ``num_tokens // frames``
            (at least 1), pooled to the most square grid of that size (64 over 8 frames -> 2x4).
        depth: RegNet blocks before and after the pooling (Honeybee: 3).
        hidden: width of the conv blocks (0 = the vision width).
        frame_embeddings: add a learned embedding per frame (patch position embeddings, as in
            Honeybee, are always added).
        mlp_depth: layers of the SiLU MLP readout to the LLM width (Honeybee: 2).
    """

    name = "cabstractor"

    def __init__(
        self,
        vision_dim: int,
        llm_dim: int,
        frames: int,
        patches: int,
        num_tokens: int = 64,
        depth: int = 3,
        hidden: int = 0,
        frame_embeddings: bool = True,
        mlp_depth: int = 2,
    ) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches, num_tokens=num_tokens, hidden=hidden, depth=depth,
                         frame_embeddings=bool(frame_embeddings), mlp_depth=mlp_depth)
        side = math.isqrt(patches)
        if side * side != patches:
            raise ValueError(
                f"cabstractor projector needs a square grid of patch tokens per frame, got {patches} "
                f"(not a square; is the CLS token kept? set model.vision_cls = \"drop\")"
            )
        per_frame = max(1, num_tokens // frames)
        if per_frame > patches:
            raise ValueError(
                f"cabstractor projector: {per_frame} tokens per frame ({num_tokens} over {frames} frames) "
                f"is more than the {patches} patches it pools"
            )
        width = self.width
        self.side = side
        self.grid = pooled_grid(per_frame)

        # Small random inits (not zeros) so every parameter gets a gradient from the first step.
        self.pos_embed = nn.Parameter(torch.randn(patches, vision_dim) * 0.02)
        self.frame_embed = nn.Parameter(torch.randn(frames, vision_dim) * 0.02) if frame_embeddings else None
        self.stage1 = reg_stage(depth, vision_dim, width)
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.stage2 = reg_stage(depth, width, width)
        readout: list[nn.Module] = [nn.Linear(width, llm_dim)]
        for _ in range(mlp_depth - 1):
            readout += [nn.SiLU(), nn.Linear(llm_dim, llm_dim)]
        self.readout = nn.Sequential(*readout)

    @property
    def num_visual_tokens(self) -> int:
        return self.frames * self.grid[0] * self.grid[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)  # (B, T, N, Dv)
        b, t, n, dv = x.shape
        x = x + self.pos_embed  # patch positions, broadcast over (B, T)
        if self.frame_embed is not None:
            x = x + self.frame_embed[:, None, :]  # (T, 1, Dv) broadcast over patches
        x = x.reshape(b * t, self.side, self.side, dv).permute(0, 3, 1, 2)  # (B*T, Dv, g, g)
        x = self.stage2(self.pool(self.stage1(x)))  # (B*T, D, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B*T, h*w, D), row-major over the grid
        x = x.reshape(b, self.num_visual_tokens, self.width)  # (B, T*h*w, D), frame by frame
        return self.readout(x)  # (B, V, Dl)
