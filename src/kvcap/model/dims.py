"""Backbone dimensions without loading a model (and without torch): for `kvcap projectors`.

    vision_dims(model_id) -> (width, patches per frame)   # CLS not counted
    llm_hidden(model_id) -> hidden size

Where the numbers come from, first hit wins, never touching the network:
1. the model's ``config.json`` when the id is a local directory (or ``tiny:<name>``);
2. the same file in the local Hugging Face cache (``huggingface_hub.try_to_load_from_cache``);
3. a small built-in table of the known default backbones.
Otherwise :class:`DimsError`, a one-line message naming the id; an unusable config.json is the
one reader's `kvcap.model.backbone.ModelConfigError`, naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError


class DimsError(KvcapError, ValueError):
    """The dimensions of a backbone cannot be found offline, or its config.json is unusable."""


# Known vision encoders: lower-case id -> (width, patch tokens per frame without CLS).
KNOWN_VISION: dict[str, tuple[int, int]] = {
    "openai/clip-vit-large-patch14-336": (1024, 24 * 24),
    "openai/clip-vit-large-patch14": (1024, 16 * 16),
    "openai/clip-vit-base-patch16": (768, 14 * 14),
    "openai/clip-vit-base-patch32": (768, 7 * 7),
}

# Known LLMs: lower-case id -> hidden size (Qwen3 dense models; the -Base checkpoints share them).
KNOWN_LLM: dict[str, int] = {
    "qwen/qwen3-0.6b": 1024,
    "qwen/qwen3-1.7b": 2048,
    "qwen/qwen3-4b": 2560,
    "qwen/qwen3-8b": 4096,
    "qwen/qwen3-14b": 5120,
    "qwen/qwen3-32b": 5120,
}


def _local_config(model_id: str) -> Path | None:
    """config.json of a local directory, a tiny:<name> model, or a cached hub snapshot."""
    if model_id.startswith("tiny:"):
        from kvcap.model.tiny import (
            resolve_model_id,  # writes the tiny model on first use
        )

        model_id = resolve_model_id(model_id)
    path = Path(model_id).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise DimsError(f"{config}: no such file (is {model_id} a model directory?)")
        return config
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # not a valid repo id (e.g. a missing path): nothing cached for it
        return None
    return Path(cached) if isinstance(cached, str) else None


def _read_config(path: Path) -> dict[str, Any]:
    from kvcap.model.backbone import read_config_json

    return read_config_json(path.parent)


def _int_field(cfg: dict[str, Any], key: str, path: Path) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DimsError(f"{path}: {key}: expected a positive integer, got {value!r}")
    return value


def _section(data: dict[str, Any], sub: str, key: str) -> dict[str, Any]:
    """The dict holding `key`: the top level (a bare vision/text model) or `sub` (a composite model)."""
    if key not in data and isinstance(data.get(sub), dict):
        return data[sub]
    return data


def _not_found(kind: str, model_id: str, flags: str) -> DimsError:
    return DimsError(
        f"cannot find the dimensions of {kind} {model_id!r} offline (not a local model directory, "
        f"not in the Hugging Face cache, not a known backbone); pass {flags}"
    )


def vision_dims(model_id: str) -> tuple[int, int]:
    """(width, patch tokens per frame, CLS not counted) of a vision encoder."""
    config = _local_config(str(model_id))
    if config is not None:
        cfg = _section(_read_config(config), "vision_config", "hidden_size")
        width = _int_field(cfg, "hidden_size", config)
        side = _int_field(cfg, "image_size", config) // _int_field(cfg, "patch_size", config)
        return width, side * side
    key = str(model_id).lower()
    if key in KNOWN_VISION:
        return KNOWN_VISION[key]
    raise _not_found("the vision encoder", model_id, "--vision-dim and --patches")


def llm_hidden(model_id: str) -> int:
    """Hidden size of a language model."""
    config = _local_config(str(model_id))
    if config is not None:
        cfg = _section(_read_config(config), "text_config", "hidden_size")
        return _int_field(cfg, "hidden_size", config)
    key = str(model_id).lower().removesuffix("-base")
    if key in KNOWN_LLM:
        return KNOWN_LLM[key]
    raise _not_found("the LLM", model_id, "--llm-dim")
