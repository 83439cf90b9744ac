"""`caption.quantization = "auto"` and `--batch-size auto`: what to run with, decided at start-up.

Torch-light: the decisions take numbers (free memory, weight bytes, per-clip bytes) and
callables (a probe that runs one batch), so tests fake a GPU's free memory on a CPU.

    quantization  auto -> `none` (bf16, LoRA merged) when the bf16 LLM plus AUTO_MIN_BATCH clips'
                  KV cache and activations fit the free memory with HEADROOM to spare, else `4bit`;
                  on a CPU: as the checkpoint was trained (today's behaviour).
    batch size    auto -> on a CPU CPU_BATCH; on a GPU the largest of 1, 2, 4, ... MAX_AUTO_BATCH
                  for which a probe (prefill + two decode steps at the full cache length) runs
                  without running out of memory and leaves HEADROOM free.
    back-off      a batch that still runs out of memory is split in halves and retried (no clip
                  is lost); later batches use the smaller size (`BatchLimit`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

AUTO = "auto"
CPU_BATCH = 4  # caption.batch_size's default before `auto` (what a CPU keeps)
AUTO_MIN_BATCH = 4  # bf16 must fit at least this batch (auto batch) to be chosen over 4-bit
MAX_AUTO_BATCH = 64
HEADROOM = 0.10  # fraction of the free memory left unused (allocator fragmentation, the vision tower)


@dataclasses.dataclass
class Choice:
    value: Any
    reason: str


def is_oom(exc: BaseException) -> bool:
    """Whether an exception is running out of (GPU) memory, without importing torch."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def llm_bytes(config: dict[str, Any], bytes_per_param: float = 2.0) -> int:
    """Approximate bytes of a decoder LLM's weights from its config.json (bf16 by default)."""
    hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    inter, vocab = int(config["intermediate_size"]), int(config["vocab_size"])
    heads, kv_heads = int(config["num_attention_heads"]), int(config.get("num_key_value_heads") or config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    attn = hidden * head_dim * (heads * 2 + kv_heads * 2)
    mlp = 3 * hidden * inter
    embed = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return int((layers * (attn + mlp) + embed) * bytes_per_param)


def kv_bytes_per_token(config: dict[str, Any], bytes_per_value: int = 2) -> int:
    """Bytes of K and V cached per token (all layers)."""
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    return 2 * int(config["num_hidden_layers"]) * kv_heads * head_dim * bytes_per_value


def clip_bytes(config: dict[str, Any], tokens: int) -> int:
    """Per-clip memory while captioning: the KV cache for `tokens` plus the prefill's widest
    activations (one layer's MLP over the prompt, bf16), a deliberate over-estimate."""
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    return kv_bytes_per_token(config) * tokens + tokens * (3 * inter + 4 * hidden) * 2


def choose_quantization(requested: str, *, device: str, trained: str, free_bytes: int | None, weight_bytes: int,
                        per_clip_bytes: int, batch: int | str) -> Choice:
    """The LLM weights to load: `none` / `8bit` / `4bit` (see the module docstring)."""
    if requested != AUTO:
        return Choice(trained if requested == "checkpoint" else requested, f"caption.quantization={requested}")
    if not str(device).startswith("cuda") or free_bytes is None:
        return Choice(trained, f"on {device}: as the checkpoint was trained ({trained})")
    clips = AUTO_MIN_BATCH if batch == AUTO else int(batch)
    need = weight_bytes + clips * per_clip_bytes
    budget = free_bytes * (1 - HEADROOM)
    gib = 1024**3
    if need <= budget:
        return Choice("none", f"bf16 LLM {weight_bytes / gib:.1f} GiB + {clips} clips {clips * per_clip_bytes / gib:.1f} GiB "
                              f"fits {free_bytes / gib:.1f} GiB free (LoRA merged)")
    return Choice("4bit", f"bf16 LLM {weight_bytes / gib:.1f} GiB + {clips} clips {clips * per_clip_bytes / gib:.1f} GiB "
                          f"exceeds {budget / gib:.1f} of {free_bytes / gib:.1f} GiB free")


def choose_batch(requested: int | str, *, device: str, probe: Callable[[int], int | None] | None = None,
                 free_bytes: int | None = None, limit: int = MAX_AUTO_BATCH) -> Choice:
    """The batch size. `probe(b)` runs one batch of b clips and returns the peak bytes it used
    (None if unknown); it raises an out-of-memory error when b does not fit."""
    if requested != AUTO:
        return Choice(int(requested), f"--batch-size {requested}")
    if not str(device).startswith("cuda") or probe is None:
        return Choice(CPU_BATCH, f"on {device}: {CPU_BATCH}")
    best, note, size = 0, "", 1
    while size <= limit:
        try:
            peak = probe(size)
        except Exception as exc:  # noqa: BLE001 - only running out of memory ends the search
            if not is_oom(exc):
                raise
            note = f"batch {size} ran out of memory"
            break
        if peak is not None and free_bytes is not None and peak > free_bytes * (1 - HEADROOM):
            note = f"batch {size} peaked at {peak / 1024**3:.1f} of {free_bytes / 1024**3:.1f} GiB free"
            break
        best = size
        size *= 2
    else:
        note = f"capped at {limit}"
    if best == 0:
        return Choice(1, f"auto: {note}; trying batch 1 with back-off")
    return Choice(best, f"largest measured batch that fits ({note})")


class BatchLimit:
    """Runs batches, halving on out-of-memory without losing clips; later batches stay smaller."""

    def __init__(self, size: int, *, on_oom: Callable[[], None] | None = None, note: Callable[[str], None] | None = None):
        self.size = max(1, int(size))
        self.on_oom = on_oom  # e.g. torch.cuda.empty_cache
        self.note = note

    def run(self, fn: Callable[[Sequence[Any]], list[Any]], items: Sequence[Any]) -> list[Any]:
        """fn(items) -> one result per item; halves `items` (and self.size) while fn runs out of memory."""
        try:
            return list(fn(items))
        except Exception as exc:  # noqa: BLE001
            if not is_oom(exc) or len(items) <= 1:
                raise
        if self.on_oom is not None:
            self.on_oom()
        half = (len(items) + 1) // 2
        self.size = max(1, min(self.size, half))
        if self.note is not None:
            self.note(f"out of memory at batch {len(items)}: batch size now {self.size}")
        return self.run(fn, items[:half]) + self.run(fn, items[half:])


# ---------------------------------------------------------------------------------------------
# The measuring side (imports torch lazily; used by `kvcap caption` on a GPU).
# ---------------------------------------------------------------------------------------------


def free_cuda_bytes(device: str) -> int | None:
    """Free memory on a CUDA device (None elsewhere)."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


TEMPLATE_TOKENS = 64  # the chat template's own tokens around the video and the instruction
WIDEST_VISUAL_TOKENS = 4608  # mlp2x_gelu on CLIP-L/336, 8 frames: 8 x 576 (a checkpoint that does not say)


def prompt_tokens(spec: dict[str, Any], prompt: str | None = None) -> int:
    """Prompt length of a checkpoint, before it is loaded (kvcap.json only): its projector's visual
    tokens per clip (else tokens per frame x frames, else the widest projector's) + the chat
    template + the instruction. The instruction counts its UTF-8 bytes: byte-level BPE (Qwen3)
    never makes more tokens than bytes, and the tokenizer is not loaded yet."""
    projector, vision = spec.get("projector") or {}, spec.get("vision") or {}
    visual = projector.get("num_visual_tokens")
    if not isinstance(visual, int) or visual < 1:
        per_frame, frames = vision.get("tokens_per_frame"), spec.get("frames")
        ok = isinstance(per_frame, int) and isinstance(frames, int) and per_frame > 0 and frames > 0
        visual = per_frame * frames if ok else WIDEST_VISUAL_TOKENS
    text = prompt if prompt is not None else spec.get("prompt")
    return visual + TEMPLATE_TOKENS + len(str(text or "").encode("utf-8"))


def checkpoint_llm_config(spec: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The LLM's config.json of a checkpoint (`spec` read from `path`), None when unreadable."""
    from kvcap.errors import KvcapError
    from kvcap.model import checkpoint as ckpt
    from kvcap.model.backbone import read_config_json
    from kvcap.model.tiny import resolve_model_id

    llm = spec["llm"]
    source = path / ckpt.LLM_DIR if llm.get("bundled") else Path(resolve_model_id(llm["id"]))
    try:
        config = read_config_json(source)
    except KvcapError:  # a hub id not downloaded, a folder without config.json: quantize as trained
        return None
    return config.get("text_config", config)


def decide_quantization(requested: str, checkpoint: str | Path, device: str, batch: int | str,
                        max_new_tokens: int, prompt: str | None = None, free_bytes: int | None = None) -> Choice:
    """`choose_quantization` with the numbers read from the checkpoint and the device; `prompt`
    is the instruction used instead of the checkpoint's (None: its own); `free_bytes` is measured
    on `device` when not given."""
    from kvcap.model import checkpoint as ckpt

    path = ckpt.resolve_checkpoint(checkpoint)
    spec = ckpt.read_spec(path)
    trained = spec["llm"]["quantization"]
    config = checkpoint_llm_config(spec, path)
    if requested == AUTO and str(device).startswith("cuda") and config is None:
        return Choice(trained, f"LLM config unreadable: as trained ({trained})")
    free = free_bytes if free_bytes is not None else free_cuda_bytes(device)
    weights = llm_bytes(config) if config else 0
    per_clip = clip_bytes(config, prompt_tokens(spec, prompt) + max_new_tokens) if config else 0
    return choose_quantization(requested, device=device, trained=trained, free_bytes=free, weight_bytes=weights,
                               per_clip_bytes=per_clip, batch=batch)


def probe_batches(captioner: Any, generation: Any) -> Callable[[int], int | None]:
    """probe(b): encode b blank clips, prefill and two decode steps at the full cache length;
    returns the peak bytes allocated above what was allocated before (None off CUDA)."""
    import numpy as np
    import torch

    def probe(batch: int) -> int | None:
        captioner._static_decoder()._state = None  # the last probe's cache is not part of this one
        device = captioner.device
        cuda = device.type == "cuda"
        if cuda:
            empty_cuda_cache()
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        frames = np.zeros((batch, captioner.frames, captioner.image_size, captioner.image_size, 3), dtype=np.uint8)
        with torch.no_grad():
            features = captioner.encode(frames)
            settings = captioner._static_settings(generation, {})
            if settings is None:
                captioner.generate_ids(features, generation, max_new_tokens=2)
            else:
                embeds, mask = captioner.prompt_batch(features)
                captioner._static_decoder().generate(embeds, mask, settings, run_steps=3)  # prefill + two decode steps
        if not cuda:
            return None
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)

    return probe


def fixed_batch(value: int | str) -> int:
    """caption.batch_size for callers that do not measure (training-time eval, the demo): `auto` -> CPU_BATCH."""
    return CPU_BATCH if value == AUTO else max(1, int(value))
