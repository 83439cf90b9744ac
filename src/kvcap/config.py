"""Typed configuration: ``kvcap.toml`` + CLI overrides, validated with key names.

Every field carries an attribute docstring (the string literal under it); ``kvcap config show``
prints them as comments. Loading never imports torch.

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
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_NAME = "kvcap.toml"


class ConfigError(ValueError):
    """A one-line, user-facing configuration error."""


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
    vision_cls: str = "drop"
    """What to do with the CLS token: `drop` (patch tokens only) or `keep`."""
    llm: str = "Qwen/Qwen3-8B"
    """Language model: a hub id or local directory of a causal LM with a chat template.
    `tiny:qwen3` writes a tiny random one on first use."""
    quantization: str = "4bit"
    """LLM weights: `none`, `8bit` or `4bit` (bitsandbytes nf4, double quant, bf16 compute)."""
    dtype: str = "auto"
    """Compute dtype: `auto` (bf16 on GPU, fp32 on CPU), `bf16`, `fp16` or `fp32`."""
    frames: int = 8
    """Frames sampled uniformly per clip (centres of equal segments)."""
    prompt: str = "이 영상을 자세히 설명해 주세요."
    """The instruction in the user turn, after the video placeholder."""
    gradient_checkpointing: bool = True
    """Recompute LLM activations in backward to save memory (stage 2)."""


@dataclass
class ProjectorConfig:
    name: str = "mlp2x_gelu"
    """Projector: `linear`, `mlp2x_gelu`, `perceiver`, `cabstractor` or `mixer`."""
    num_tokens: int = 64
    """Visual tokens out of `perceiver` / `cabstractor` / `mixer` for the whole clip (ignored by
    the per-patch projectors, which keep frames x patches tokens)."""
    depth: int = 0
    """Perceiver: resampler layers. C-Abstractor: RegNet blocks before and after pooling.
    0 = each projector's own default (perceiver 6 as in Flamingo, cabstractor 3 as in Honeybee)."""
    heads: int = 8
    """Perceiver: attention heads."""
    hidden: int = 0
    """Inner width of perceiver / cabstractor / mixer (0 = the vision width)."""
    frame_embeddings: bool = True
    """Add learned per-frame embeddings so the projector knows frame order."""


@dataclass
class LoraConfig:
    r: int = 64
    """LoRA rank."""
    alpha: int = 128
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA branch."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """LLM module names that get LoRA adapters."""


@dataclass
class VideoConfig:
    backend: str = "auto"
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
    num_workers: int = 2
    """Background decoding workers when features are not cached."""


@dataclass
class StageConfig:
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine with warmup)."""
    epochs: float = 2
    """Epochs over the train split (fractions allowed)."""
    projector: str = "full"
    """Projector training: `full` or `frozen`."""
    llm: str = "frozen"
    """LLM training: `frozen`, `lora` or `full`."""


@dataclass
class TrainConfig:
    runs_dir: str = "runs"
    """Folder that holds run directories (`--run NAME` lives here)."""
    seed: int = 42
    """Seed for weights, data order and dropout; resume restores the RNG exactly."""
    batch_size: int = 4
    """Clips per optimizer micro-step, per process."""
    grad_accum: int = 4
    """Micro-steps accumulated per optimizer step."""
    warmup_ratio: float = 0.03
    """Fraction of optimizer steps spent warming the learning rate up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 = off)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0 = run all epochs)."""
    log_every: int = 10
    """Write a `metrics.jsonl` train row every N optimizer steps."""
    save_every: int = 500
    """Write a resumable checkpoint every N optimizer steps (and at each epoch end)."""
    keep_last: int = 2
    """Resumable checkpoints kept in `checkpoints/`."""
    eval_max_clips: int = 0
    """Cap on val clips captioned per eval (0 = the whole val split)."""
    best_metric: str = "meteor"
    """Metric that picks `best/`: `meteor`, `siglip`, `diversity` or `loss`."""
    early_stop_on_collapse: bool = False
    """Stop training when the eval raises the mode-collapse alarm."""
    max_caption_tokens: int = 512
    """Longest caption (tokens) kept in training; longer ones are truncated."""
    stage1: StageConfig = field(default_factory=lambda: StageConfig(lr=1e-3, epochs=2, projector="full", llm="frozen"))
    """Stage 1, alignment: projector only (seed: lr 1e-3, 2 epochs)."""
    stage2: StageConfig = field(default_factory=lambda: StageConfig(lr=5e-5, epochs=3, projector="full", llm="lora"))
    """Stage 2, instruction tuning: projector + LoRA (seed: lr 5e-5, 3 epochs)."""


@dataclass
class GenerationConfig:
    max_new_tokens: int = 512
    """Longest caption generated (reference captions are ~400 Qwen3 tokens)."""
    num_beams: int = 1
    """Beam search width (1 = greedy or sampling)."""
    do_sample: bool = False
    """Sample instead of greedy decoding."""
    temperature: float = 0.7
    """Sampling temperature (with `do_sample`)."""
    top_p: float = 0.9
    """Nucleus sampling mass (with `do_sample`)."""
    repetition_penalty: float = 1.05
    """>1 discourages repeating tokens (1 = off)."""
    no_repeat_ngram_size: int = 0
    """Forbid repeating any n-gram of this size (0 = off)."""
    min_new_tokens: int = 0
    """Generate at least this many tokens before a stop token may end the caption (0 = off;
    benchmarks set it to force the token count, as random weights rarely stop)."""
    engine: str = "auto"
    """Decoding loop: `static` (kvcap's static-cache loop, CUDA graphs on a GPU), `hf`
    (transformers' generate), `auto` = static for greedy decoding, hf for sampling, beams and n-gram bans."""


@dataclass
class CaptionConfig:
    checkpoint: str = ""
    """Checkpoint directory for `kvcap caption` (`demo` = the bundled demo model)."""
    output: str = "captions"
    """Output folder for `captions.jsonl` and subtitle files."""
    formats: list[str] = field(default_factory=lambda: ["jsonl", "srt"])
    """Outputs: any of `jsonl`, `srt`, `vtt`."""
    batch_size: int | str = "auto"
    """Videos per generation batch; `auto` = on a GPU the largest batch that fits (measured at
    start-up), on a CPU 4."""
    segment: float = 0.0
    """Caption fixed windows of this many seconds, one cue each (0 = whole clip)."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    quantization: str = "auto"
    """LLM weights for captioning: `auto` (on a GPU `none` when the bf16 LLM fits the free memory
    at the batch, else `4bit`; on a CPU as trained), `checkpoint` (as trained), `none`, `8bit` or
    `4bit`. `none` folds LoRA into the weights and decoded 2.4x faster than 4-bit on an H100 (bench/RESULTS.md)."""
    workers: int | str = "auto"
    """Background decoding workers; `auto` = two per core this process may use, at most 16 (each
    decoder gets cores / workers FFmpeg threads, at least 1, so workers never oversubscribe the cores)."""


@dataclass
class ScoreConfig:
    metrics: list[str] = field(default_factory=lambda: ["meteor", "siglip", "diversity"])
    """Metrics to compute: `meteor`, `siglip`, `diversity`."""
    tokenizer: str = "kiwi"
    """Tokens for METEOR and diversity: `kiwi` (morphemes), `whitespace` or `char`."""
    siglip: str = "google/siglip2-base-patch16-224"
    """SigLIP2 model (hub id or local directory) for image-text alignment."""
    siglip_frames: int = 8
    """Frames per clip embedded and averaged for SigLIP2."""
    target_meteor: float = 0.40
    """Seed target: METEOR must exceed this."""
    target_siglip: float = 0.10
    """Seed target: SigLIP2 score must exceed this."""
    target_diversity: float = 0.50
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
    """Decoding captions."""
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    """`kvcap caption` defaults."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """`kvcap score` defaults."""

    source: str = field(default="<defaults>", compare=False, repr=False)
    """(internal) where this config was read from, for messages."""


# Allowed values, keyed by dotted path ("*" matches the stage tables).
CHOICES: dict[str, tuple[str, ...]] = {
    "model.vision_cls": ("drop", "keep"),
    "model.quantization": ("none", "8bit", "4bit"),
    "model.dtype": ("auto", "bf16", "fp16", "fp32"),
    "projector.name": ("linear", "mlp2x_gelu", "perceiver", "cabstractor", "mixer"),
    "video.backend": ("auto", "decord", "pyav"),
    "train.*.projector": ("full", "frozen"),
    "train.*.llm": ("frozen", "lora", "full"),
    "train.best_metric": ("meteor", "siglip", "diversity", "loss"),
    "caption.device": ("auto", "cpu", "cuda"),
    "caption.quantization": ("auto", "checkpoint", "none", "8bit", "4bit"),
    "generation.engine": ("auto", "hf", "static"),
    "score.tokenizer": ("kiwi", "whitespace", "char"),
}
LIST_CHOICES: dict[str, tuple[str, ...]] = {
    "caption.formats": ("jsonl", "srt", "vtt"),
    "score.metrics": ("meteor", "siglip", "diversity"),
}
# (min, max, min_inclusive) for numbers; None = unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "model.frames": (1, 256, True),
    "projector.num_tokens": (1, None, True),
    "projector.depth": (0, None, True),
    "projector.heads": (1, None, True),
    "projector.hidden": (0, None, True),
    "lora.r": (1, None, True),
    "lora.alpha": (1, None, True),
    "lora.dropout": (0, 1, True),
    "data.num_workers": (0, 64, True),
    "train.*.lr": (0, 1, False),
    "train.*.epochs": (0, None, False),
    "train.batch_size": (1, None, True),
    "train.grad_accum": (1, None, True),
    "train.warmup_ratio": (0, 1, True),
    "train.weight_decay": (0, None, True),
    "train.max_grad_norm": (0, None, True),
    "train.max_steps": (0, None, True),
    "train.log_every": (1, None, True),
    "train.save_every": (1, None, True),
    "train.keep_last": (1, None, True),
    "train.eval_max_clips": (0, None, True),
    "train.max_caption_tokens": (8, None, True),
    "generation.max_new_tokens": (1, None, True),
    "generation.num_beams": (1, None, True),
    "generation.temperature": (0, None, False),
    "generation.top_p": (0, 1, False),
    "generation.repetition_penalty": (0, None, False),
    "generation.no_repeat_ngram_size": (0, None, True),
    "generation.min_new_tokens": (0, None, True),
    "caption.batch_size": (1, None, True),
    "caption.segment": (0, None, True),
    "caption.workers": (0, 64, True),
    "score.siglip_frames": (1, 256, True),
}


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


def _public_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.name != "source"]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}s"
    if get_args(tp) and origin is not list:  # a union such as int | str
        return " or ".join(_type_name(t) for t in get_args(tp))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str, where: "_Where") -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = get_origin(tp)
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
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


def _pattern_key(key: str) -> str:
    return re.sub(r"^train\.stage\d\.", "train.*.", key)


def _check_value(key: str, value: Any, where: "_Where") -> None:
    pkey = _pattern_key(key)
    if pkey in CHOICES and value not in CHOICES[pkey]:
        raise where.error(key, f"must be one of {', '.join(CHOICES[pkey])}, got {_show(value)}")
    if pkey in LIST_CHOICES:
        for item in value:
            if item not in LIST_CHOICES[pkey]:
                raise where.error(key, f"unknown item {_show(item)} (valid: {', '.join(LIST_CHOICES[pkey])})")
    if pkey in RANGES and isinstance(value, str):  # a number field that also takes "auto"
        if value != "auto":
            raise where.error(key, f"must be a number or \"auto\", got {_show(value)}")
        return
    if pkey in RANGES:
        lo, hi, lo_inclusive = RANGES[pkey]
        if lo is not None and (value < lo or (value == lo and not lo_inclusive)):
            raise where.error(key, f"must be {'>=' if lo_inclusive else '>'} {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            raise where.error(key, f"must be <= {hi:g}, got {value:g}")


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
    hints = get_type_hints(cls)
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
            value = _coerce(value, hints[name], key, where)
            _check_value(key, value, where)
            setattr(out, name, value)
    return out


def config_from_dict(data: dict[str, Any], source: str = "<dict>", text: str | None = None, base: Config | None = None) -> Config:
    """Validate `data` (parsed TOML) and return a Config; `base` supplies values not given."""
    where = _Where(source, text)
    cfg = _build(copy.deepcopy(base) if base is not None else Config(), data, "", where)
    cfg.source = source
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


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any]) -> Config:
    """Apply `key=value` strings (or a {dotted key: value} dict) on top of `cfg`."""
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        if value is None:
            continue
        current = get_value(cfg, key, source="--set")
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(current, list) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        source = cfg.source
        cfg = config_from_dict(_nest(key, value), source="--set", base=cfg)
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
