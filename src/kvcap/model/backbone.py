"""References to local backbone folders: a checkpoint names the folder and its fingerprint
instead of carrying a copy of its weights (an 8B LLM is 15 GiB; a projector is 20 MB).

    ref = reference(Path("/models/Qwen3-8B"))   # {"path": "/models/Qwen3-8B", "fingerprint": {...}}
    check_reference(ref, "LLM", where)         # -> the folder, or CheckpointError naming it

The fingerprint is cheap to take at every load: a hash of config.json and, per safetensors file,
its size and a hash of its header (tensor names, dtypes, shapes and offsets) -- not the weights.
Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError, one_line

# Files a model folder is made of (config, weights, tokenizer and processor files).
MODEL_SUFFIXES = (".json", ".safetensors", ".jinja", ".txt", ".model")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on its JSON header


class BackboneError(KvcapError, ValueError):
    """A referenced backbone folder that is gone or changed (one line naming it)."""


class ModelConfigError(KvcapError, ValueError):
    """A model folder's config.json that is missing, unreadable or not a JSON object (one line naming it)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safetensors_header(file: Path) -> str:
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return "truncated"
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_HEADER:
            return "bad-header"
        return _sha256(handle.read(length))


def fingerprint(folder: str | Path) -> dict[str, Any]:
    """{"config": sha256 of config.json, "weights": {file name: [size, header sha256]}}."""
    folder = Path(folder)
    config = folder / "config.json"
    weights = {
        f.name: [f.stat().st_size, _safetensors_header(f)] for f in sorted(folder.glob("*.safetensors")) if f.is_file()
    }
    return {"config": _sha256(config.read_bytes()) if config.is_file() else None, "weights": weights}


def reference(folder: str | Path) -> dict[str, Any]:
    """What a checkpoint stores for a local backbone folder: its resolved path and fingerprint."""
    folder = Path(folder).expanduser().resolve()
    return {"path": str(folder), "fingerprint": fingerprint(folder)}


def check_reference(ref: dict[str, Any], what: str, where: str | Path) -> Path:
    """The referenced folder, after checking it still is what the checkpoint was trained on."""
    folder = Path(str(ref.get("path", "")))
    hint = f"(referenced by {where}; put it back, or re-export the checkpoint with `kvcap export --bundle`)"
    if not folder.is_dir():
        raise BackboneError(f"{what} backbone {folder} is missing: moved or deleted? {hint}")
    now = fingerprint(folder)
    saved = ref.get("fingerprint") or {}
    if now.get("config") != saved.get("config"):
        raise BackboneError(f"{what} backbone {folder} has changed: its config.json differs from the one trained on {hint}")
    if now.get("weights") != saved.get("weights"):
        changed = sorted(set(now.get("weights", {})) ^ set(saved.get("weights", {}))) or sorted(
            n for n in now.get("weights", {}) if now["weights"][n] != list(saved.get("weights", {}).get(n, []))
        )
        raise BackboneError(
            f"{what} backbone {folder} has changed: {', '.join(changed[:3]) or 'weights'} differ from the ones trained on {hint}"
        )
    return folder


def copy_model_dir(source: str | Path, target: Path, *, link: bool = False) -> None:
    """Copy (or hard-link, where `link` and the file system allows) a model folder's files."""
    source = Path(source)
    if not source.is_dir():
        raise BackboneError(f"{source}: cannot bundle a model that is not a local directory")
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.suffix in MODEL_SUFFIXES:
            if link:
                try:
                    os.link(item, target / item.name)
                    continue
                except OSError:  # another file system, or links not allowed: copy
                    pass
            shutil.copy2(item, target / item.name)


def read_config_json(folder: str | Path) -> dict[str, Any]:
    """A model folder's config.json as a dict: the one reader of it in kvcap.

    A missing, unreadable or non-JSON file, or one that is not a JSON object, is a
    `ModelConfigError` naming the file; callers for which the file is optional catch it.
    """
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ModelConfigError(f"{path}: no such file (is {folder} a model directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"{path}: not a readable JSON config ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: expected a JSON object")
    return data
