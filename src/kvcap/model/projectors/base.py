"""The projector interface: visual tokens of every frame in, LLM-width embeddings out.

Every projector maps features of the frozen vision encoder, ``(B, T, N, Dv)`` (batch, frames,
patch tokens per frame, vision width), to the embeddings spliced into the LLM's input,
``(B, V, Dl)``. Subclasses record every constructor argument so that :meth:`Projector.config`
can rebuild the same module from a checkpoint's ``kvcap.json``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Projector(nn.Module):
    """Base class of the registry's projectors.

    Args:
        vision_dim: width of the vision features (Dv), e.g. 1024 for CLIP ViT-L/14.
        llm_dim: hidden size of the language model (Dl), e.g. 4096 for Qwen3-8B.
        frames: frames per clip (T) the projector is built for.
        patches: patch tokens per frame (N), e.g. 576 for ViT-L/14 at 336 px with CLS dropped.
    """

    name: ClassVar[str] = ""

    def __init__(self, vision_dim: int, llm_dim: int, frames: int, patches: int) -> None:
        super().__init__()
        self._check_positive(vision_dim=vision_dim, llm_dim=llm_dim, frames=frames, patches=patches)
        self.vision_dim = vision_dim
        self.llm_dim = llm_dim
        self.frames = frames
        self.patches = patches
        self._init_args: dict[str, Any] = {
            "vision_dim": vision_dim, "llm_dim": llm_dim, "frames": frames, "patches": patches,
        }

    def _check_positive(self, **values: Any) -> None:
        """ValueError naming the projector and key for any value that is not an int >= 1."""
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.name} projector: {key} must be a positive integer, got {value!r}")

    def _check_hidden(self, hidden: Any) -> None:
        """`hidden` is 0 (meaning the vision width) or a positive int."""
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"{self.name} projector: hidden must be 0 (the vision width) or a positive integer, got {hidden!r}")

    def _record(self, **args: Any) -> None:
        """Remember projector-specific constructor arguments for :meth:`config`."""
        self._init_args.update(args)

    @property
    def num_visual_tokens(self) -> int:
        """V: how many embeddings one clip becomes in the LLM's input."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-able ``{"name", every constructor argument}``: ``build_projector(**cfg)`` rebuilds it."""
        return {"name": self.name, **self._init_args}

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Refuse features of the wrong shape with a message naming both shapes; match our dtype."""
        expected = (self.frames, self.patches, self.vision_dim)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{self.name} projector expects features (B, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"(batch, frames, patches, vision width), got {tuple(x.shape)}"
            )
        weight = next(self.parameters())
        return x.to(weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, T, N, Dv) -> (B, V, Dl)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._init_args.items())


class PoolingProjector(Projector):
    """A projector that pools a clip to a fixed number of visual tokens (`num_tokens`) at an inner
    `width` (`hidden`, 0 = the vision width): the perceiver, the C-Abstractor and the mixer.

    It checks and records what they share, then their own arguments (`own`: positive integers,
    and flags passed as bools), in that order, for :meth:`Projector.config`.
    """

    def __init__(self, vision_dim: int, llm_dim: int, frames: int, patches: int, *, num_tokens: int, hidden: int,
                 **own: Any) -> None:
        super().__init__(vision_dim, llm_dim, frames, patches)
        self._check_positive(num_tokens=num_tokens, **{k: v for k, v in own.items() if not isinstance(v, bool)})
        self._check_hidden(hidden)
        self._record(num_tokens=num_tokens, hidden=hidden, **own)
        self.num_tokens = num_tokens
        self.width = hidden or vision_dim

    @property
    def num_visual_tokens(self) -> int:
        return self.num_tokens
