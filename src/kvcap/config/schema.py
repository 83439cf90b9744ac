"""The schema: one dataclass per `kvcap.toml` table, a docstring under every field (what
`kvcap config show` prints; kvcap.config.fields reads them from this module's source), constraints on
the annotations (kvcap.config.constraints). Order of fields is the order `config show` prints.

`Config.provenance` says which layer set each key (see `layer_rank`); the layer operations are
in kvcap.config.layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

from kvcap.config.constraints import (
    BestMetric,
    CaptionFormat,
    CaptionQuantization,
    Device,
    Fraction,
    Frames,
    Metric,
    NonNegative,
    Positive,
    ProjectorName,
    Quantization,
    Range,
    VisionCls,
    Workers,
)
from kvcap.records.caption import FLAG_COMPRESSION_ABOVE, FLAG_LOGPROB_BELOW
from kvcap.records.formats import DEFAULT_FORMATS
from kvcap.records.metrics import metric_names, seed_target

# The layers a value can come from, lowest first (kvcap.config.layers applies them).
DEFAULT_LAYER = "default"
CHECKPOINT_LAYER = "checkpoint"
SET_LAYER = "--set"
FLAG_LAYER = "flag"
FILE_RANK = 2
_RANKS = {DEFAULT_LAYER: 0, CHECKPOINT_LAYER: 1, SET_LAYER: 3, FLAG_LAYER: 4}


def layer_rank(layer: str) -> int:
    """0 default, 1 checkpoint, 2 a config file (named by its path), 3 `--set`, 4 a command flag."""
    return _RANKS.get(layer, FILE_RANK)


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
    best_metric: BestMetric = "meteor"
    """Metric that picks `best/`: a `kvcap score --metrics` name (e.g. `meteor`) or `loss`."""
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
    formats: list[CaptionFormat] = field(default_factory=lambda: list(DEFAULT_FORMATS))
    """Outputs: any of the formats `kvcap caption --help` lists for `-f` (`jsonl` is always written)."""
    batch_size: Union[Positive, Literal["auto"]] = "auto"
    """Videos per generation batch; `auto` = on a GPU the largest batch that fits (measured at
    start-up), on a CPU 4."""
    segment: Union[Annotated[float, Range(ge=0)], Literal["scenes"]] = 0.0
    """Caption fixed windows of this many seconds, one caption each (0 = whole clip), or `scenes`:
    one caption per detected shot, captioned from frames inside it."""
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
    flag_logprob_below: Annotated[float, Range(le=0)] = FLAG_LOGPROB_BELOW
    """A caption whose mean token log-probability (`avg_logprob`) is below this is marked
    `suspect` in captions.jsonl (its status stays ok; -1000 turns the check off)."""
    flag_compression_above: Annotated[float, Range(gt=0)] = FLAG_COMPRESSION_ABOVE
    """A caption whose gzip compression ratio is above this (it repeats itself; whisper uses 2.4)
    is marked `suspect` (1000 turns the check off)."""
    cluster: Literal["local", "ray"] = "local"
    """Where the job runs: `local` (this process: decode threads + one model) or `ray` (a Ray
    cluster: CPU decode tasks feed one captioner per GPU worker; see [ray]). Needs `kvcap[ray]`."""


@dataclass
class RayConfig:
    address: str = ""
    """Ray cluster for `--cluster ray` (`HOST:PORT`); empty = Ray's `RAY_ADDRESS`, then a cluster
    running on this machine (`ray start --head`), else kvcap starts a local one and stops it at the end."""
    gpu_workers: Union[Positive, Literal["auto"]] = "auto"
    """Captioner actors (one model each); `auto` = every GPU in the cluster / `gpus_per_worker`
    (one actor on CPUs when the cluster has no GPU)."""
    gpus_per_worker: Annotated[float, Range(gt=0)] = 1.0
    """GPUs each captioner actor takes (a fraction shares a card)."""
    decode_cpus: Annotated[float, Range(gt=0)] = 1.0
    """CPUs each decode task takes (its FFmpeg threads follow it)."""
    retries: Annotated[int, Range(ge=0)] = 3
    """Times a clip is retried when the process decoding or captioning it dies, before it is
    written as an `error` record."""


@dataclass
class SubtitleConfig:
    cue_style: Literal["broadcast", "segment"] = "broadcast"
    """SRT and WebVTT cues: `broadcast` spreads each segment's caption over short cues by the
    rules below (Korean broadcast practice); `segment` = one cue per segment holding its whole
    caption. txt, tsv and captions.jsonl always keep one text per segment."""
    max_line_chars: Positive = 16
    """Longest subtitle line, in units: a Hangul syllable is 1; Latin letters, digits, spaces and
    punctuation are 1/2. A single longer word stands alone on its line."""
    max_lines: Positive = 2
    """Most lines in one cue."""
    min_cue_seconds: Annotated[float, Range(ge=0)] = 5 / 6
    """Shortest time a cue is shown (5/6 s) where the segment is long enough for its text; cues
    of a segment too short for its text are shorter, and counted in job.json."""
    max_cue_seconds: Annotated[float, Range(gt=0)] = 7.0
    """Longest time a cue is shown; the rest of a long segment is left without subtitles."""
    min_gap_frames: NonNegative = 2
    """Blank frames (at the clip's own frame rate) between two cues."""


@dataclass
class ScoreConfig:
    metrics: list[Metric] = field(default_factory=lambda: list(metric_names()))
    """Metrics to compute: any of those `kvcap score --help` lists for `--metrics` (default: all)."""
    tokenizer: Literal["kiwi", "whitespace", "char"] = "kiwi"
    """Tokens for METEOR and diversity: `kiwi` (morphemes), `whitespace` or `char`."""
    siglip: str = "google/siglip2-base-patch16-224"
    """SigLIP2 model (hub id or local directory) for image-text alignment."""
    siglip_frames: Frames = 8
    """Frames per clip embedded and averaged for SigLIP2."""
    target_meteor: float = seed_target("meteor")
    """Seed target: METEOR must exceed this."""
    target_siglip: float = seed_target("siglip")
    """Seed target: SigLIP2 score must exceed this."""
    target_diversity: float = seed_target("diversity")
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
    subtitle: SubtitleConfig = field(default_factory=SubtitleConfig)
    """How captions become SRT and WebVTT cues."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """`kvcap score` defaults."""
    ray: RayConfig = field(default_factory=RayConfig)
    """`kvcap caption --cluster ray`: the cluster and its stages."""

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
