"""kvcap checkpoints: self-describing directories, written atomically, loaded without pickle.

    DIR/kvcap.json               the CheckpointSpec: backbones, projector name + arguments, LoRA,
                                 prompt, frames, generation defaults, which parts are bundled
    DIR/README.md                a Hugging Face model card (kvcap.model.card)
    DIR/projector.safetensors    the projector's weights
    DIR/adapter/                 peft LoRA adapter (adapter_config.json + adapter_model.safetensors)
    DIR/llm/                     full LLM weights (trained FULL, or a tiny base) + tokenizer
    DIR/vision/                  the vision tower when its id is `tiny:`
    DIR/tokenizer/               the tokenizer where it differs from the LLM's own

A backbone given as a local folder is not copied: kvcap.json holds its resolved path and a
fingerprint (`{"ref": {"path", "fingerprint"}}`, see kvcap.model.backbone), checked at load;
`kvcap export CKPT OUT --bundle` makes a copy that carries it. Hub ids stay ids.

`Captioner.save` writes one and `Captioner.from_checkpoint` reads it; this module owns the
format: `CheckpointSpec` (load/save/validation), the part paths and the one-line `CheckpointError`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError
from kvcap.errors import one_line as _one_line

FORMAT = "kvcap-checkpoint"
FORMAT_VERSION = 1
SPEC_FILE = "kvcap.json"
PROJECTOR_FILE = "projector.safetensors"
ADAPTER_DIR = "adapter"
LLM_DIR = "llm"
VISION_DIR = "vision"
TOKENIZER_DIR = "tokenizer"
CARD_FILE = "README.md"
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


@dataclass
class VisionSpec:
    id: str
    """The vision tower as the user named it (hub id, `tiny:` id or local folder)."""
    layer: int = -2
    cls: str = "drop"
    bundled: bool = False
    """Its files are in DIR/vision/."""
    ref: dict[str, Any] | None = None
    """A local folder referenced by path + fingerprint (kvcap.model.backbone), not copied."""
    image_size: int | None = None
    hidden_size: int | None = None
    tokens_per_frame: int | None = None


@dataclass
class ProjectorSpec:
    name: str
    config: dict[str, Any] | None = None
    """The projector's constructor arguments (`Projector.config()`), None before it is built."""
    num_visual_tokens: int | None = None


@dataclass
class LlmSpec:
    id: str
    """The LLM as the user named it (hub id, `tiny:` id or local folder)."""
    quantization: str = "none"
    dtype: str = "auto"
    gradient_checkpointing: bool = False
    bundled: bool = False
    """Its files are in DIR/llm/ (a tiny base, or weights trained FULL / merged with LoRA)."""
    ref: dict[str, Any] | None = None
    """A local folder referenced by path + fingerprint, not copied."""
    trained_full: bool = False
    merged_lora: dict[str, Any] | None = None
    hidden_size: int | None = None


@dataclass
class CheckpointSpec:
    """kvcap.json, typed. `load` validates a file; `save` writes one."""

    vision: VisionSpec
    projector: ProjectorSpec
    llm: LlmSpec
    prompt: str
    frames: int
    lora: dict[str, Any] | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    max_caption_tokens: int = 512
    tokenizer_bundled: bool = False
    created: str | None = None
    card: dict[str, Any] | None = None
    """What the model card says beyond this spec (kvcap.model.card facts: metrics, data, recipe)."""
    source: str | None = field(default=None, compare=False)
    """(not saved) the directory it was read from."""

    @classmethod
    def load(cls, path: str | Path) -> "CheckpointSpec":
        """Read and validate `DIR/kvcap.json` (`demo` = the bundled demo checkpoint)."""
        path = resolve_checkpoint(path)
        spec = cls.from_dict(read_spec(path), path / SPEC_FILE)
        spec.source = str(path)
        return spec

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str | Path = SPEC_FILE) -> "CheckpointSpec":
        parts = {"vision": VisionSpec, "projector": ProjectorSpec, "llm": LlmSpec}
        try:
            built = {name: kind(**_known(kind, data[name])) for name, kind in parts.items()}
            return cls(**{**_known(cls, data), **built})
        except (TypeError, KeyError) as exc:
            raise CheckpointError(f"{where}: malformed checkpoint description ({_one_line(exc)})") from None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("source", None)
        return {"format": FORMAT, "version": FORMAT_VERSION, **data}

    def save(self, directory: str | Path) -> Path:
        """Write DIR/kvcap.json atomically."""
        from kvcap.fsutil import atomic_write_json

        target = Path(directory) / SPEC_FILE
        atomic_write_json(target, self.to_dict())
        return target

    def copy(self) -> "CheckpointSpec":
        return CheckpointSpec.from_dict(json.loads(json.dumps(self.to_dict(), default=str)))

    def settings(self) -> dict[str, Any]:
        """The checkpoint's layer of settings ({dotted config key: value}): frames, prompt,
        generation. `with_checkpoint(cfg, spec.settings())` puts them under what the user set."""
        from kvcap.config import GenerationConfig

        known = {f.name for f in dataclasses.fields(GenerationConfig)}
        out: dict[str, Any] = {"model.frames": self.frames, "model.prompt": self.prompt}
        out.update({f"generation.{k}": v for k, v in (self.generation or {}).items() if k in known})
        return out


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)} - {"source"}
    return {k: v for k, v in data.items() if k in names and not (kind is CheckpointSpec and k in ("vision", "projector", "llm"))}


def read_spec(path: str | Path) -> dict[str, Any]:
    """Read and validate `DIR/kvcap.json` as a plain dict (CheckpointSpec.load types it)."""
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


def backbone_source(path: Path, part: VisionSpec | LlmSpec, what: str) -> str:
    """Where to load a backbone from: the bundled copy, the checked local reference, or the id."""
    from kvcap.model.backbone import BackboneError, check_reference

    if part.bundled:
        return str(check_bundled_model(path / (VISION_DIR if isinstance(part, VisionSpec) else LLM_DIR), what))
    if part.ref:
        try:
            return str(check_reference(part.ref, what, path / SPEC_FILE))
        except BackboneError as exc:
            raise CheckpointError(str(exc)) from None
    from kvcap.model.hub import require_loadable

    key = "vision.id" if isinstance(part, VisionSpec) else "llm.id"
    require_loadable(part.id, f"{path / SPEC_FILE} {key}", fix=(
        f"download it first where the hub is reachable (hf download {part.id}) into the hub cache this "
        f"machine reads (HF_HOME), or run where the hub is reachable"))
    return part.id


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


