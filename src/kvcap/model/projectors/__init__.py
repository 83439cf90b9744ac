"""The projector registry: the bridge from frozen vision features to the LLM's input.

    PROJECTORS["linear" | "mlp2x_gelu" | "perceiver" | "cabstractor" | "mixer"] -> Projector subclass
    build_projector(name, vision_dim, llm_dim, frames, patches, **args) -> Projector
    projector_kwargs(cfg.projector) -> the constructor arguments the user's config sets
    count_projector(name, ...) -> (parameters, visual tokens), built on the meta device

Every projector maps (B, T, N, Dv) -> (B, V, Dl) and reports V as ``num_visual_tokens``;
``projector.config()`` is a JSON-able dict with which ``build_projector(**cfg)`` rebuilds the
same module (a checkpoint stores it in ``kvcap.json``).
"""

from __future__ import annotations

from kvcap.errors import KvcapError

import inspect
from typing import Any

import torch

from kvcap.model.projectors.base import Projector
from kvcap.model.projectors.cabstractor import CAbstractorProjector
from kvcap.model.projectors.mixer import MixerProjector
from kvcap.model.projectors.mlp import LinearProjector, MLP2xGeluProjector
from kvcap.model.projectors.perceiver import PerceiverProjector

# Keyed by the name users write in `projector.name` and checkpoints store.
PROJECTORS: dict[str, type[Projector]] = {
    cls.name: cls for cls in (LinearProjector, MLP2xGeluProjector, PerceiverProjector, CAbstractorProjector, MixerProjector)
}

# Constructor arguments every projector takes (the rest are projector-specific).
_COMMON_ARGS = ("vision_dim", "llm_dim", "frames", "patches")

__all__ = [
    "PROJECTORS", "Projector", "UnknownProjectorError", "build_projector", "count_projector",
    "projector_args", "projector_kwargs",
]


class UnknownProjectorError(KvcapError, ValueError):
    """A projector name that is not in the registry; the message lists the valid ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown projector {name!r}; valid projectors: {', '.join(PROJECTORS)}")
        self.name = name


def _projector_class(name: str) -> type[Projector]:
    try:
        return PROJECTORS[name]
    except (KeyError, TypeError):
        raise UnknownProjectorError(name) from None


def projector_args(name: str) -> list[str]:
    """The projector-specific constructor arguments of `name` (beyond the four common ones)."""
    params = inspect.signature(_projector_class(name).__init__).parameters
    return [p for p in params if p != "self" and p not in _COMMON_ARGS]


def build_projector(name: str, vision_dim: int, llm_dim: int, frames: int, patches: int, **args: Any) -> Projector:
    """Build the projector registered as `name` (weights are freshly initialised).

    Raises UnknownProjectorError for a name outside the registry, and ValueError naming the
    argument for one the projector does not take or a bad value.
    """
    cls = _projector_class(name)
    accepted = projector_args(name)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} projector: unknown argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(accepted) if accepted else 'none beyond the dimensions'}"
        )
    return cls(vision_dim=vision_dim, llm_dim=llm_dim, frames=frames, patches=patches, **args)


def projector_kwargs(cfg: Any, name: str | None = None) -> dict[str, Any]:
    """Constructor arguments from the user's ``[projector]`` config for projector `name`.

    `cfg` is a :class:`kvcap.config.ProjectorConfig` (or a whole ``Config``); `name` defaults
    to ``cfg.name``. Only the fields the projector takes are passed (``num_tokens``, ``depth``,
    ``heads``, ``hidden``, ``frame_embeddings``), so ``linear`` gets none. A ``depth`` of 0
    leaves the projector's own default (perceiver 6 as in Flamingo, cabstractor 3 as in Honeybee).
    """
    cfg = getattr(cfg, "projector", cfg)
    name = cfg.name if name is None else name
    out: dict[str, Any] = {}
    for arg in projector_args(name):
        if hasattr(cfg, arg):
            value = getattr(cfg, arg)
            if arg == "depth" and value == 0:
                continue
            out[arg] = value
    return out


def count_projector(name: str, vision_dim: int, llm_dim: int, frames: int, patches: int, **args: Any) -> tuple[int, int]:
    """(parameter count, visual tokens) of a projector, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        projector = build_projector(name, vision_dim, llm_dim, frames, patches, **args)
    return sum(p.numel() for p in projector.parameters()), projector.num_visual_tokens
