"""Typed configuration: ``kvcap.toml`` + CLI overrides, validated with key names.

Every field carries an attribute docstring (the string literal under it); ``kvcap config show``
prints them as comments. Constraints sit on the fields too (``Literal``, ``Annotated[.., Range]``).
Loading never imports torch.

Settings come in layers: built-in defaults < the checkpoint's own (frames, prompt, generation)
< kvcap.toml / --config < --set < command flags. ``Config.provenance`` records which layer set
each key; ``cfg.explicit_keys()`` are the ones the user set.

Errors are :class:`ConfigError`, whose message is one line naming the file, the key and (where
it can be found) the line, e.g. ``kvcap.toml:12: train.stage1.lr: expected a number, got 'x'``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import re
import sys
import types
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from kvcap.errors import KvcapError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from kvcap.records.targets import SEED_TARGETS

DEFAULT_CONFIG_NAME = "kvcap.toml"


class ConfigError(KvcapError, ValueError):
    """A one-line, user-facing configuration error."""


# ---------------------------------------------------------------------------------------------
# Constraints, declared once on the fields: `Literal[...]` for choices, `Annotated[int, Range(..)]`
# for numbers. Validation (`_coerce`) and the Click options (`commands/options.py`) read them.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The interval a number must lie in: `ge`/`gt` the lower bound (inclusive/exclusive), `le` the upper."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        """Why `value` is out of range, or None when it fits."""
        if self.ge is not None and value < self.ge:
            return f"must be >= {self.ge:g}, got {value:g}"
        if self.gt is not None and value <= self.gt:
            return f"must be > {self.gt:g}, got {value:g}"
        if self.le is not None and value > self.le:
            return f"must be <= {self.le:g}, got {value:g}"
        return None


# Projector names users write; the torch-side registry (kvcap.model.projectors.PROJECTORS) is
# tested to hold exactly these.
ProjectorName = Literal["linear", "mlp2x_gelu", "perceiver", "cabstractor", "mixer"]
PROJECTOR_NAMES: tuple[str, ...] = get_args(ProjectorName)
# LLM weights; captioning adds the sentinel USE_CHECKPOINT = "whatever the checkpoint was trained with".
Quantization = Literal["none", "8bit", "4bit"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
USE_CHECKPOINT = "checkpoint"
AUTO = "auto"
CaptionQuantization = Literal[(AUTO, USE_CHECKPOINT, *QUANTIZATIONS)]
CaptionFormat = Literal["jsonl", "srt", "vtt", "txt", "tsv"]
Metric = Literal["meteor", "siglip", "diversity"]
Device = Literal["auto", "cpu", "cuda"]
VisionCls = Literal["drop", "keep"]
CLS_CHOICES: tuple[str, ...] = get_args(VisionCls)
# Sizes of things: at least one.
Positive = Annotated[int, Range(ge=1)]
NonNegative = Annotated[int, Range(ge=0)]
Workers = Annotated[int, Range(ge=0, le=64)]
Frames = Annotated[int, Range(ge=1, le=256)]
Fraction = Annotated[float, Range(ge=0, le=1)]


def quantization_override(value: str | None) -> str | None:
    """`caption.quantization` -> what `Captioner.from_checkpoint` takes (None = as trained)."""
    return None if value in (None, USE_CHECKPOINT) else value


# ---------------------------------------------------------------------------------------------
# The schema. Order of fields is the order `config show` prints.
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    vision: str = "openai/clip-vit-large-patch14-336"
    """Vision encoder: a hub id or local directory of a CLIP vision model (always frozen).
    `tiny:clip` writes a tiny random one on first use (tests, demo)."""
    vision_layer: int = -2
    """Hidden-state layer taken from the vision tower (-2 = penultimate, as in LLaVA)."""
    vision_cls: VisionCls = "drop"
    """What to do with the CLS token: `drop` (patch tokens only) or `keep`."""
    llm: str = "Qwen/Qwen3-8B"
    """Language model: a hub id or local directory of a causal LM with a chat template.
    `tiny:qwen3` writes a tiny random one on first use."""
    quantization: Quantization = "4bit"
    """LLM weights: `none`, `8bit` or `4bit` (bitsandbytes nf4, double quant, bf16 compute)."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Compute dtype: `auto` (bf16 on GPU, fp32 on CPU), `bf16`, `fp16` or `fp32`."""
    frames: Frames = 8
    """Frames sampled uniformly per clip (centres of equal segments)."""
    prompt: str = "이 영상을 자세히 설명해 주세요."
    """The instruction in the user turn, after the video placeholder."""
    gradient_checkpointing: bool = True
    """Recompute LLM activations in backward to save memory (stage 2)."""


@dataclass
class ProjectorConfig:
    name: ProjectorName = "mlp2x_gelu"
    """Projector: `linear`, `mlp2x_gelu`, `perceiver`, `cabstractor` or `mixer`."""
    num_tokens: Positive = 64
    """Visual tokens out of `perceiver` / `cabstractor` / `mixer` for the whole clip (ignored by
    the per-patch projectors, which keep frames x patches tokens)."""
    depth: NonNegative = 0
    """Perceiver: resampler layers. C-Abstractor: RegNet blocks before and after pooling.
    0 = each projector's own default (perceiver 6 as in Flamingo, cabstractor 3 as in Honeybee)."""
    heads: Positive = 8
    """Perceiver: attention heads."""
    hidden: NonNegative = 0
    """Inner width of perceiver / cabstractor / mixer (0 = the vision width)."""
    frame_embeddings: bool = True
    """Add learned per-frame embeddings so the projector knows frame order."""


@dataclass
class LoraConfig:
    r: Positive = 64
    """LoRA rank."""
    alpha: Positive = 128
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: Fraction = 0.05
    """Dropout on the LoRA branch."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """LLM module names that get LoRA adapters."""


@dataclass
class VideoConfig:
    backend: Literal["auto", "decord", "pyav"] = "auto"
    """Decoder: `auto`, `decord` or `pyav`. `auto` uses kvcap's PyAV path (GOP-aware seeking,
    in-decoder scaling), measured faster than decord here and able to read AV1 and rotation."""


@dataclass
class DataConfig:
    manifest: str = "data/manifest.jsonl"
    """Manifest JSONL (`id`, `video`, `caption`, `split`); train/val come from `split`."""
    cache_dir: str = ".kvcap-cache/features"
    """Where the frozen encoder's features are cached (safetensors shards)."""
    use_cache: bool = True
    """Read and fill the feature cache during training."""
    num_workers: Workers = 2
    """Background decoding workers when features are not cached."""


@dataclass
class StageConfig:
    lr: Annotated[float, Range(gt=0, le=1)] = 1e-3
    """Peak learning rate (AdamW, cosine with warmup)."""
    epochs: Annotated[float, Range(gt=0)] = 2
    """Epochs over the train split (fractions allowed)."""
    projector: Literal["full", "frozen"] = "full"
    """Projector training: `full` or `frozen`."""
    llm: Literal["frozen", "lora", "full"] = "frozen"
    """LLM training: `frozen`, `lora` or `full`."""


@dataclass
class TrainConfig:
    runs_dir: str = "runs"
    """Folder that holds run directories (`--run NAME` lives here)."""
    seed: int = 42
    """Seed for weights, data order and dropout; resume restores the RNG exactly."""
    batch_size: Positive = 4
    """Clips per optimizer micro-step, per process."""
    grad_accum: Positive = 4
    """Micro-steps accumulated per optimizer step."""
    warmup_ratio: Fraction = 0.03
    """Fraction of optimizer steps spent warming the learning rate up."""
    weight_decay: Annotated[float, Range(ge=0)] = 0.0
    """AdamW weight decay."""
    max_grad_norm: Annotated[float, Range(ge=0)] = 1.0
    """Gradient clipping norm (0 = off)."""
    max_steps: NonNegative = 0
    """Stop after this many optimizer steps (0 = run all epochs)."""
    log_every: Positive = 10
    """Write a `metrics.jsonl` train row every N optimizer steps."""
    save_every: Positive = 500
    """Write a resumable checkpoint every N optimizer steps (and at each epoch end)."""
    keep_last: Positive = 2
    """Resumable checkpoints kept in `checkpoints/`."""
    eval_max_clips: NonNegative = 0
    """Cap on val clips captioned per eval (0 = the whole val split)."""
    best_metric: Literal["meteor", "siglip", "diversity", "loss"] = "meteor"
    """Metric that picks `best/`: `meteor`, `siglip`, `diversity` or `loss`."""
    early_stop_on_collapse: bool = False
    """Stop training when the eval raises the mode-collapse alarm."""
    max_caption_tokens: Annotated[int, Range(ge=8)] = 512
    """Longest caption (tokens) kept in training; longer ones are truncated."""
    stage1: StageConfig = field(default_factory=lambda: StageConfig(lr=1e-3, epochs=2, projector="full", llm="frozen"))
    """Stage 1, alignment: projector only (seed: lr 1e-3, 2 epochs)."""
    stage2: StageConfig = field(default_factory=lambda: StageConfig(lr=5e-5, epochs=3, projector="full", llm="lora"))
    """Stage 2, instruction tuning: projector + LoRA (seed: lr 5e-5, 3 epochs)."""


@dataclass
class GenerationConfig:
    max_new_tokens: Positive = 512
    """Longest caption generated (reference captions are ~400 Qwen3 tokens)."""
    num_beams: Positive = 1
    """Beam search width (1 = greedy or sampling)."""
    do_sample: bool = False
    """Sample instead of greedy decoding."""
    temperature: Annotated[float, Range(gt=0)] = 0.7
    """Sampling temperature (with `do_sample`)."""
    top_p: Annotated[float, Range(gt=0, le=1)] = 0.9
    """Nucleus sampling mass (with `do_sample`)."""
    repetition_penalty: Annotated[float, Range(gt=0)] = 1.05
    """>1 discourages repeating tokens (1 = off)."""
    no_repeat_ngram_size: NonNegative = 0
    """Forbid repeating any n-gram of this size (0 = off)."""
    min_new_tokens: NonNegative = 0
    """Generate at least this many tokens before a stop token may end the caption (0 = off;
    benchmarks set it to force the token count, as random weights rarely stop)."""
    engine: Literal["auto", "hf", "static"] = "auto"
    """Decoding loop: `static` (kvcap's static-cache loop, CUDA graphs on a GPU), `hf`
    (transformers' generate), `auto` = static for greedy decoding, hf for sampling, beams and n-gram bans."""


@dataclass
class CaptionConfig:
    checkpoint: str = ""
    """Checkpoint directory for `kvcap caption` (`demo` = the bundled demo model)."""
    output: str = "captions"
    """Output folder for `captions.jsonl` and subtitle files (`-` = the records to stdout)."""
    formats: list[CaptionFormat] = field(default_factory=lambda: ["jsonl", "srt"])
    """Outputs: any of `jsonl`, `srt`, `vtt`, `txt`, `tsv`."""
    batch_size: Union[Positive, Literal["auto"]] = "auto"
    """Videos per generation batch; `auto` = on a GPU the largest batch that fits (measured at
    start-up), on a CPU 4."""
    segment: Union[Annotated[float, Range(ge=0)], Literal["scenes"]] = 0.0
    """Caption fixed windows of this many seconds, one cue each (0 = whole clip), or `scenes`:
    one cue per detected shot, captioned from frames inside it."""
    scene_min_seconds: Annotated[float, Range(ge=0)] = 0.5
    """With `segment = "scenes"`: cuts closer than this to the last one are ignored (strobes)."""
    scene_max_seconds: Annotated[float, Range(ge=0)] = 60.0
    """With `segment = "scenes"`: longer shots are split into parts of this length (0 = never)."""
    device: Device = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    quantization: CaptionQuantization = "auto"
    """LLM weights for captioning: `auto` (on a GPU `none` when the bf16 LLM fits the free memory
    at the batch, else `4bit`; on a CPU as trained), `checkpoint` (as trained), `none`, `8bit` or
    `4bit`. `none` folds LoRA into the weights (the fastest decode when it fits in memory)."""
    workers: Union[Workers, Literal["auto"]] = "auto"
    """Background decoding workers; `auto` = two per core this process may use, at most 16 (each
    decoder gets cores / workers FFmpeg threads, at least 1, so workers never oversubscribe the cores)."""


@dataclass
class ScoreConfig:
    metrics: list[Metric] = field(default_factory=lambda: ["meteor", "siglip", "diversity"])
    """Metrics to compute: `meteor`, `siglip`, `diversity`."""
    tokenizer: Literal["kiwi", "whitespace", "char"] = "kiwi"
    """Tokens for METEOR and diversity: `kiwi` (morphemes), `whitespace` or `char`."""
    siglip: str = "google/siglip2-base-patch16-224"
    """SigLIP2 model (hub id or local directory) for image-text alignment."""
    siglip_frames: Frames = 8
    """Frames per clip embedded and averaged for SigLIP2."""
    target_meteor: float = SEED_TARGETS.meteor
    """Seed target: METEOR must exceed this."""
    target_siglip: float = SEED_TARGETS.siglip
    """Seed target: SigLIP2 score must exceed this."""
    target_diversity: float = SEED_TARGETS.diversity
    """Seed target: diversity (1 - self-BLEU-4) must exceed this."""


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    """Backbones, prompt and frames."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    """The trainable bridge from vision to language."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA adapters for stage 2."""
    video: VideoConfig = field(default_factory=VideoConfig)
    """Decoding."""
    data: DataConfig = field(default_factory=DataConfig)
    """Datasets and the feature cache."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The two-stage trainer."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Decoding captions (when captioning, a checkpoint's saved values hold where these are not set)."""
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    """`kvcap caption` defaults."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """`kvcap score` defaults."""

    source: str = field(default="<defaults>", compare=False, repr=False)
    """(internal) where this config was read from, for messages."""
    provenance: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    """(internal) dotted key -> the layer that set it (see `layer_rank`); absent = built-in default."""

    def layer_of(self, key: str) -> str:
        """Which layer set `key`: `default`, `checkpoint`, a config file's path, `--set` or `flag`."""
        return self.provenance.get(key, DEFAULT_LAYER)

    def explicit_keys(self) -> set[str]:
        """Keys the user set: in a config file they loaded, with `--set`, or with a command flag."""
        return {k for k, layer in self.provenance.items() if layer_rank(layer) >= FILE_RANK}

    def is_explicit(self, key: str) -> bool:
        """Did the user set `key` (file, `--set` or flag), rather than a default or the checkpoint?"""
        return layer_rank(self.layer_of(key)) >= FILE_RANK

    def with_checkpoint(self, values: dict[str, Any]) -> "Config":
        """The checkpoint's own settings ({dotted key: value}, see `checkpoint.checkpoint_settings`)
        layered above the built-in defaults and below everything the user set."""
        return apply_layer(self, values, CHECKPOINT_LAYER)


# ---------------------------------------------------------------------------------------------
# Layers: built-in defaults < the checkpoint's own < kvcap.toml (or --config) < --set < flags.
# A key's provenance says which layer set it; a lower layer never overwrites a higher one, so
# the order in which layers are applied does not matter.
# ---------------------------------------------------------------------------------------------

DEFAULT_LAYER = "default"
CHECKPOINT_LAYER = "checkpoint"
SET_LAYER = "--set"
FLAG_LAYER = "flag"
FILE_RANK = 2
_RANKS = {DEFAULT_LAYER: 0, CHECKPOINT_LAYER: 1, SET_LAYER: 3, FLAG_LAYER: 4}


def layer_rank(layer: str) -> int:
    """0 default, 1 checkpoint, 2 a config file (named by its path), 3 `--set`, 4 a command flag."""
    return _RANKS.get(layer, FILE_RANK)


# ---------------------------------------------------------------------------------------------
# Field docs (attribute docstrings), read from this module's source once.
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Map field name -> the string literal written under it in the class body."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


# ---------------------------------------------------------------------------------------------
# Building a Config from plain dicts, with precise errors.
# ---------------------------------------------------------------------------------------------


INTERNAL_FIELDS = ("source", "provenance")


def _public_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.name not in INTERNAL_FIELDS]


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def setting_type(key: str) -> Any:
    """The annotation of dotted `key` (with its Literal / Annotated constraints)."""
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = _hints(cls)
        if part not in hints or part in INTERNAL_FIELDS:
            raise ConfigError(f"config: {key}: unknown key")
        tp = hints[part]
        if i < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"config: {key}: unknown key")
            cls = tp
    return tp


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, value in data.items():
        if isinstance(value, dict):
            out.extend(_leaf_keys(value, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        return _type_name(get_args(tp)[0])
    if origin is Literal:
        return "a string"
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}s"
    if get_args(tp) and origin is not list:  # a union such as int | str
        return " or ".join(_type_name(t) for t in get_args(tp))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str, where: "_Where") -> Any:
    """Check `value` against the annotation `tp` (its Literal choices and Range too); ints are
    accepted where floats are expected."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        value = _coerce(value, base, key, where)
        for constraint in meta:
            if isinstance(constraint, Range) and (problem := constraint.problem(value)):
                raise where.error(key, problem)
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise where.error(key, f"must be one of {', '.join(choices)}, got {_show(value)}")
        return value
    if origin is Union or origin is types.UnionType:  # a number or a word, e.g. caption.segment
        options = get_args(tp)
        words = tuple(w for option in options if get_origin(option) is Literal for w in get_args(option))
        if isinstance(value, str):
            if value not in words:
                raise where.error(key, f"expected a number or {' / '.join(words)}, got {_show(value)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(key, f"expected a number or a word, got {_show(value)}")
        number = next(option for option in options if get_origin(option) is not Literal)
        return _coerce(value, number, key, where)
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
        if get_origin(item_tp) is Literal:
            for item in value:
                if item not in get_args(item_tp):
                    raise where.error(key, f"unknown item {_show(item)} (valid: {', '.join(get_args(item_tp))})")
        return [_coerce(v, item_tp, key, where) for v in value]
    if get_args(tp):  # int | str ("auto"): the first member that takes the value
        for member in get_args(tp):
            try:
                return _coerce(value, member, key, where)
            except ConfigError:
                continue
        raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(key, f"expected true/false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(key, f"expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(key, f"expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(key, f"expected a string, got {_show(value)}")
        return value
    raise where.error(key, f"unsupported type {tp!r}")  # pragma: no cover - schema bug


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Where:
    """Formats errors as `file:line: key: reason`, finding the key's line in the TOML text."""

    def __init__(self, source: str, text: str | None):
        self.source = source
        self.lines = text.splitlines() if text else []

    def line_of(self, key: str) -> int | None:
        parts = key.split(".")
        table, leaf = parts[:-1], parts[-1]
        current: list[str] = []
        leaf_re = re.compile(rf'^\s*"?{re.escape(leaf)}"?\s*=')
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
            if header:
                current = [p.strip().strip('"') for p in header.group(1).split(".")]
                if current == parts:  # the key names a table
                    return number
                continue
            if leaf_re.match(line):
                # `a.b = 1` inside [x] also counts when the dotted prefix matches
                if current == table:
                    return number
            dotted = re.match(r"^\s*([\w.\"]+)\s*=", line)
            if dotted and "." in dotted.group(1):
                full = current + [p.strip('"') for p in dotted.group(1).split(".")]
                if full == parts:
                    return number
        return None

    def error(self, key: str, reason: str) -> ConfigError:
        line = self.line_of(key)
        loc = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{loc}: {key}: {reason}")


def _build(base: Any, data: dict[str, Any], prefix: str, where: _Where) -> Any:
    """A copy of dataclass instance `base` with `data` applied on top (nested tables merge)."""
    cls = type(base)
    hints = _hints(cls)
    known = {f.name for f in _public_fields(cls)}
    out = dataclasses.replace(base)
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in known:
            close = [k for k in known if k.startswith(name[:3])]
            hint = f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""
            raise where.error(key, f"unknown key{hint}")
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise where.error(key, f"expected a table [{key}], got {_show(value)}")
            setattr(out, name, _build(getattr(base, name), value, f"{key}.", where))
        else:
            setattr(out, name, _coerce(value, hints[name], key, where))
    return out


def config_from_dict(data: dict[str, Any], source: str = "<dict>", text: str | None = None, base: Config | None = None,
                     layer: str | None = None) -> Config:
    """Validate `data` (parsed TOML) and return a Config; `base` supplies values not given.

    The keys in `data` are recorded as set by `layer` (default: the file `source`).
    """
    where = _Where(source, text)
    cfg = _build(copy.deepcopy(base) if base is not None else Config(), data, "", where)
    cfg.source = source
    cfg.provenance = {**cfg.provenance, **{k: layer or source for k in _leaf_keys(data)}}
    return cfg


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *, required: bool = False) -> Config:
    """Read `path` (default `./kvcap.toml` when it exists) and apply `--set key=value` overrides.

    A missing default file means built-in defaults; a missing explicit file is an error.
    """
    cfg = Config()
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        path = candidate if candidate.is_file() else None
        if path is None and required:
            raise ConfigError(f"{DEFAULT_CONFIG_NAME}: no such file")
    if path is not None:
        path = Path(path)
        shown = _display_path(path)
        if not path.is_file():
            raise ConfigError(f"{shown}: no such file")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            m = re.search(r"\(at line (\d+), column (\d+)\)", message)
            reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
            loc = f"{shown}:{m.group(1)}" if m else shown
            raise ConfigError(f"{loc}: TOML syntax error: {reason}") from None
        cfg = config_from_dict(data, source=shown, text=text)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def commented_toml(cfg: Config | None = None) -> str:
    """Every key with its doc, values commented out: a file that documents all and sets nothing,
    so built-in defaults and each checkpoint's own settings hold until a line is uncommented."""
    out = []
    for line in config_to_toml(cfg or Config()).splitlines():
        out.append(f"# {line}" if re.match(r"^[A-Za-z_]\w*\s*=", line) else line)
    return "\n".join(out) + "\n"


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` -> (key, value); the value is read as TOML, else as a bare string."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected section.key=value")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
        raise ConfigError(f"--set {item}: bad key {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any], layer: str = SET_LAYER) -> Config:
    """Apply `key=value` strings (or a {dotted key: value} dict) on top of `cfg`, as `layer`."""
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    return apply_layer(cfg, dict(items), layer, force=True)


def apply_layer(cfg: Config, values: dict[str, Any], layer: str, *, force: bool = False) -> Config:
    """Set {dotted key: value} as `layer`, except where a higher layer already set the key.

    None values are skipped (a flag not given). `force` also lets the layer override a higher
    one (`--set` given after a flag in code). Errors name the key, as `--set` ones do.
    """
    rank = layer_rank(layer)
    for key, value in values.items():
        if value is None:
            continue
        current = get_value(cfg, key, source="--set")
        if not force and layer_rank(cfg.layer_of(key)) > rank:
            continue
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(current, list) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        source = cfg.source
        cfg = config_from_dict(_nest(key, value), source="--set", base=cfg, layer=layer)
        cfg.source = source
    return cfg


def get_value(cfg: Any, key: str, source: str = "config") -> Any:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in _public_fields(type(node))}:
            raise ConfigError(f"{source}: {key}: unknown key")
        node = getattr(node, part)
    return node


def config_to_dict(cfg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in _public_fields(type(cfg)):
        value = getattr(cfg, f.name)
        out[f.name] = config_to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def config_to_toml(cfg: Config, comments: bool = True) -> str:
    """The resolved config as TOML text (with each field's doc as a comment)."""
    lines: list[str] = []

    def emit(obj: Any, table: str) -> None:
        docs = field_docs(type(obj))
        scalars = [f for f in _public_fields(type(obj)) if not dataclasses.is_dataclass(getattr(obj, f.name))]
        tables = [f for f in _public_fields(type(obj)) if dataclasses.is_dataclass(getattr(obj, f.name))]
        if table and scalars:
            lines.append(f"[{table}]")
        for f in scalars:
            if comments and f.name in docs:
                lines.append(f"# {docs[f.name]}")
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
        if table and scalars:
            lines.append("")
        for f in tables:
            if comments and f.name in docs:
                lines.append(f"# {docs[f.name]}")
            emit(getattr(obj, f.name), f"{table}.{f.name}" if table else f.name)

    emit(cfg, "")
    return "\n".join(lines).rstrip() + "\n"
