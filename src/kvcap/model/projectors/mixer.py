"""A token-mixing resampler over the whole clip (the token-mixing step of MLP-Mixer,
Tolstikhin et al., 2021, used to pool instead of to mix in place).

Every patch token of every frame first goes through a channel MLP; then each of the
``num_tokens`` output tokens is a learned weighted sum of all T x N of them, one weight per
(output token, frame, patch). The weights belong to positions, not to content: an output token
can compare the same place in two frames, or neighbouring places across time, which is what
camera motion and other clip-wide changes are made of. A resampler's attention (perceiver) has
to discover such comparisons from content, and per-patch projectors leave them to the LLM.
A LayerNorm and a second MLP read the pooled tokens out to the LLM width.

Parameters: about ``Dv*D + T*N*num_tokens + D*Dl + Dl*Dl``; at CLIP ViT-L/14-336 (8 x 576
patches) -> Qwen3-8B with 64 tokens that is about 0.3M for the mixing weights plus the MLPs.
The weights are tied to T and N, like the perceiver's frame embeddings: a checkpoint captions
with the frame count and vision tower it was trained with.

Plain torch (one Linear over the position axis); no library ships it as a projector. How it
compares with the other projectors: bench/RESULTS.md ("demo ablation").
"""

from __future__ import annotations

import torch
from torch import nn

from kvcap.model.projectors.base import PoolingProjector


class MixerProjector(PoolingProjector):
    """Learned position-wise pooling of all frames: (B, T, N, Dv) -> (B, num_tokens, Dl).

    Args:
        num_tokens: visual tokens out, for the whole clip.
        hidden: width of the channel MLP before the mixing (0 = the vision width).
    """

    name = "mixer"

    def __init__(
        self,
        vision_dim: int,
        llm_dim: int,
        frames: int,
        patches: int,
        num_tokens: int = 64,
        hidden: int = 0,
    ) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches, num_tokens=num_tokens, hidden=hidden)
        width = self.width
        self.channels_in = nn.Sequential(nn.Linear(vision_dim, width), nn.GELU())
        # One weight per (output token, input position): Linear over the T*N axis.
        self.mix = nn.Linear(frames * patches, num_tokens, bias=False)
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Sequential(nn.Linear(width, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)  # (B, T, N, Dv)
        b = x.shape[0]
        x = self.channels_in(x).reshape(b, self.frames * self.patches, self.width)  # (B, T*N, D)
        x = self.mix(x.transpose(1, 2)).transpose(1, 2)  # (B, K, D): mixes over positions
        return self.readout(self.norm(x))  # (B, K, Dl)
