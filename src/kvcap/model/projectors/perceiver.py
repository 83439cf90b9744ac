"""Flamingo's Perceiver Resampler over all frames of a clip (Alayrac et al., 2022).

A fixed set of learned latents reads the visual tokens of every frame (with a learned
per-frame time embedding added, so order survives the flattening) through ``depth`` layers of
cross-attention and a feed-forward block, then a linear readout maps them to the LLM width.
The output length is ``num_tokens`` whatever the frame and patch counts.

Written in plain torch after Flamingo's description (and lucidrains/flamingo-pytorch): the
keys and values are ``[visual tokens; latents]``, both layer-normed; no biases inside the
resampler. Defaults follow Flamingo (6 layers, FFN x4, 64 latents); at 1024 -> 4096 that is
about 80M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kvcap.model.projectors.base import PoolingProjector


class PerceiverAttention(nn.Module):
    """Latents attend to the concatenation of the visual tokens and themselves."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        # media (B, M, D), latents (B, L, D)
        b, l, d = latents.shape
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        q = self.to_q(latents)  # (B, L, D)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)  # (B, M+L, D) each

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, S, D) -> (B, H, S, D/H)
            return t.reshape(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))  # (B, H, L, D/H)
        return self.to_out(out.transpose(1, 2).reshape(b, l, d))  # (B, L, D)


class FeedForward(nn.Sequential):
    """Pre-norm GELU MLP, ``mult`` times wider inside."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__(
            nn.LayerNorm(dim),
            nn.Linear(dim, dim * mult, bias=False),
            nn.GELU(),
            nn.Linear(dim * mult, dim, bias=False),
        )


class PerceiverProjector(PoolingProjector):
    """Flamingo Perceiver Resampler: (B, T, N, Dv) -> (B, num_tokens, Dl).

    Args:
        num_tokens: learned latents = visual tokens out, for the whole clip.
        depth: resampler layers (attention + FFN).
        heads: attention heads; must divide the width.
        hidden: resampler width (0 = the vision width, no input projection).
        frame_embeddings: add a learned embedding per frame to its tokens.
        ff_mult: FFN expansion factor.
    """

    name = "perceiver"

    def __init__(
        self,
        vision_dim: int,
        llm_dim: int,
        frames: int,
        patches: int,
        num_tokens: int = 64,
        depth: int = 6,
        heads: int = 8,
        hidden: int = 0,
        frame_embeddings: bool = True,
        ff_mult: int = 4,
    ) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches, num_tokens=num_tokens, hidden=hidden, depth=depth,
                         heads=heads, frame_embeddings=bool(frame_embeddings), ff_mult=ff_mult)
        width = self.width
        if width % heads:
            raise ValueError(f"perceiver projector: heads ({heads}) must divide the width ({width})")

        self.input_proj = nn.Linear(vision_dim, width) if width != vision_dim else nn.Identity()
        # Small random inits (not zeros) so every parameter gets a gradient from the first step.
        self.frame_embed = nn.Parameter(torch.randn(frames, width) * 0.02) if frame_embeddings else None
        self.latents = nn.Parameter(torch.randn(num_tokens, width) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(width, heads), FeedForward(width, ff_mult)]) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Linear(width, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)  # (B, T, N, Dv)
        b = x.shape[0]
        x = self.input_proj(x)  # (B, T, N, D)
        if self.frame_embed is not None:
            x = x + self.frame_embed[None, :, None, :]  # time embedding, broadcast over patches
        media = x.reshape(b, self.frames * self.patches, self.width)  # (B, T*N, D)
        latents = self.latents.unsqueeze(0).expand(b, -1, -1)  # (B, L, D)
        for attn, ff in self.layers:
            latents = latents + attn(media, latents)
            latents = latents + ff(latents)
        return self.readout(self.norm(latents))  # (B, L, Dl)
