"""Tiny random backbones written from configs, for tests, benchmarks and the demo recipe.

`resolve_model_id("tiny:clip")` (or `tiny:clip8`, `tiny:qwen3`, `tiny:siglip2`) writes the model
once, with a fixed seed, to `$KVCAP_HOME/tiny/<name>-<TINY_VERSION>` (default `~/.cache/kvcap`)
and returns that directory; every other id (hub id or local path) comes back unchanged. The result is loaded
through exactly the same `from_pretrained` code as a real backbone.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from kvcap.fsutil import atomic_dir, kvcap_home

TINY_PREFIX = "tiny:"
# Bump when what a writer produces changes (v2: the tiny Qwen3 tokenizer follows the new
# synthetic caption grammar), so caches written by an older kvcap are not reused.
TINY_VERSION = "v2"

# name -> "module:function" that writes the model into a directory (imported lazily: the
# writers pull in torch and transformers).
TINY_WRITERS: dict[str, str] = {
    "clip": "kvcap.model.tiny.clip:write_tiny_clip",
    "clip8": "kvcap.model.tiny.clip:write_tiny_clip8",
    "qwen3": "kvcap.model.tiny.qwen3:write_tiny_qwen3",
    "siglip2": "kvcap.model.tiny.siglip2:write_tiny_siglip2",
}


class _AlreadyWritten(Exception):
    """Internal: a concurrent writer won the race for a tiny model's directory."""


# `--set` overrides that point a config at the tiny backbones (tests, benchmarks, demo recipe).
TINY_OVERRIDES: dict[str, object] = {
    "model.vision": "tiny:clip",
    "model.llm": "tiny:qwen3",
    "model.quantization": "none",
    "model.gradient_checkpointing": False,
    "score.siglip": "tiny:siglip2",
}


def is_tiny(model_id: str) -> bool:
    return str(model_id).startswith(TINY_PREFIX)


def _writer(name: str) -> Callable[[str | Path], Path]:
    if name not in TINY_WRITERS:
        valid = ", ".join(TINY_PREFIX + n for n in TINY_WRITERS)
        raise ValueError(f"unknown tiny model {TINY_PREFIX}{name!r} (valid: {valid})")
    module, attr = TINY_WRITERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def tiny_dir(name: str) -> Path:
    """Where `tiny:<name>` lives (written or not)."""
    return kvcap_home() / "tiny" / f"{name}-{TINY_VERSION}"


def resolve_model_id(model_id: str) -> str:
    """`tiny:<name>` -> its local directory (written on first use); anything else unchanged."""
    model_id = str(model_id)
    if not is_tiny(model_id):
        return model_id
    name = model_id[len(TINY_PREFIX):]
    writer = _writer(name)
    target = tiny_dir(name)
    # A finished write is marked by config.json; concurrent first uses each write a temp dir
    # and rename it into place, so a reader never sees a half-written model.
    if not (target / "config.json").is_file():
        try:
            with atomic_dir(target) as tmp:
                writer(tmp)
                if (target / "config.json").is_file():
                    # Another process finished first: keep its copy (someone may be reading
                    # it) and let atomic_dir throw ours away.
                    raise _AlreadyWritten
        except _AlreadyWritten:
            pass
    return str(target)


def write_tiny_clip(out_dir: str | Path) -> Path:
    return _writer("clip")(out_dir)


def write_tiny_qwen3(out_dir: str | Path) -> Path:
    return _writer("qwen3")(out_dir)


def write_tiny_siglip2(out_dir: str | Path) -> Path:
    return _writer("siglip2")(out_dir)


__all__ = [
    "TINY_OVERRIDES",
    "TINY_WRITERS",
    "is_tiny",
    "resolve_model_id",
    "tiny_dir",
    "write_tiny_clip",
    "write_tiny_qwen3",
    "write_tiny_siglip2",
]
