"""kvcap checkpoints: self-describing directories, written atomically, loaded without pickle.

    DIR/kvcap.json               what to rebuild: backbones, projector name + arguments, LoRA,
                                 prompt, frames, generation defaults, which parts are bundled
    DIR/projector.safetensors    the projector's weights
    DIR/adapter/                 peft LoRA adapter (adapter_config.json + adapter_model.safetensors)
    DIR/llm/                     full LLM weights (trained FULL, or a tiny/local base) + tokenizer
    DIR/vision/                  the vision tower when its id is `tiny:` or a local directory
    DIR/tokenizer/               the tokenizer where it differs from the LLM's own

`Captioner.save` writes one and `Captioner.from_checkpoint` reads it; this module holds the
format: the spec's validation, the bundled-part paths and the one-line `CheckpointError`.
"""

from __future__ import annotations

from kvcap.errors import KvcapError
from kvcap.errors import one_line as _one_line

import json
from pathlib import Path
from typing import Any

FORMAT = "kvcap-checkpoint"
FORMAT_VERSION = 1
SPEC_FILE = "kvcap.json"
PROJECTOR_FILE = "projector.safetensors"
ADAPTER_DIR = "adapter"
LLM_DIR = "llm"
VISION_DIR = "vision"
TOKENIZER_DIR = "tokenizer"
DEMO_DIR = Path(__file__).resolve().parent.parent / "demo" / "checkpoint"

# Keys kvcap.json must hold (with the sub-keys checked on load).
_REQUIRED = {
    "vision": ("id", "layer", "cls"),
    "projector": ("name", "config"),
    "llm": ("id", "quantization"),
}


class CheckpointError(KvcapError, ValueError):
    """A checkpoint that cannot be used; the one-line message names the path."""


def resolve_checkpoint(path: str | Path) -> Path:
    """`demo` -> the bundled demo checkpoint; a directory -> itself, checked to be a checkpoint."""
    if str(path) == "demo":
        if not (DEMO_DIR / SPEC_FILE).is_file():
            raise CheckpointError(
                f"{DEMO_DIR}: the demo checkpoint is not bundled with this install "
                "(build it with the demo recipe, or pass --checkpoint DIR)"
            )
        return DEMO_DIR
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a kvcap checkpoint (expected a directory)")
    if not (path / SPEC_FILE).is_file():
        raise CheckpointError(f"{path}: not a kvcap checkpoint (no {SPEC_FILE})")
    return path


def read_spec(path: str | Path) -> dict[str, Any]:
    """Read and validate `DIR/kvcap.json`."""
    path = resolve_checkpoint(path)
    spec_path = path / SPEC_FILE
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{spec_path}: corrupt checkpoint description ({_one_line(exc)})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise CheckpointError(f"{spec_path}: not a kvcap checkpoint description (format is not {FORMAT!r})")
    version = spec.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{spec_path}: checkpoint format version {version!r} is newer than this kvcap reads ({FORMAT_VERSION})"
        )
    for section, keys in _REQUIRED.items():
        block = spec.get(section)
        if not isinstance(block, dict):
            raise CheckpointError(f"{spec_path}: missing section {section!r}")
        for key in keys:
            if key not in block:
                raise CheckpointError(f"{spec_path}: missing key {section}.{key}")
    if not isinstance(spec["projector"]["config"], dict):
        raise CheckpointError(f"{spec_path}: projector.config must be an object")
    if not isinstance(spec.get("prompt"), str):
        raise CheckpointError(f"{spec_path}: missing or non-text key 'prompt'")
    frames = spec.get("frames")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise CheckpointError(f"{spec_path}: 'frames' must be a positive integer, got {frames!r}")
    return spec


def load_safetensors(file: Path, what: str) -> dict[str, Any]:
    """Tensors from a safetensors file; a missing, truncated or corrupt file -> CheckpointError."""
    from safetensors.torch import load_file

    if not file.is_file():
        raise CheckpointError(f"{file}: missing {what}")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError types
        raise CheckpointError(f"{file}: truncated or corrupt {what} ({_one_line(exc)})") from None


def check_adapter(path: Path) -> Path:
    """The adapter dir, refusing anything peft would have to unpickle."""
    adapter = path / ADAPTER_DIR
    if not (adapter / "adapter_config.json").is_file():
        raise CheckpointError(f"{adapter}: missing adapter_config.json")
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing LoRA weights (only safetensors is loaded)")
    # Validate the file now, so a torn adapter fails with our message, not deep in peft.
    load_safetensors(weights, "LoRA weights")
    return adapter


def check_bundled_model(path: Path, what: str) -> Path:
    """A bundled backbone folder with safetensors weights (never a pickled .bin)."""
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: bundled {what} has no config.json")
    if not any(path.glob("*.safetensors")):
        raise CheckpointError(f"{path}: bundled {what} has no safetensors weights")
    return path


