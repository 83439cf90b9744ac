"""Real-size memory and speed of kvcap's seed configuration on one GPU (issue 9).

    python bench/gpu.py [--budget-s 450] [--out bench/gpu-results.json]    # on an H100/H200
    python bench/gpu.py --tiny                                              # the same code paths on CPU

No real weights are reachable, so the script writes CLIP ViT-L/14-336 and Qwen3-8B from their
published configurations with random bf16 weights (memory and speed do not depend on weight
values) into a work folder, points a kvcap `Config` at those folders and builds everything
through `Captioner.from_config` (so the 4-bit path is kvcap's own bitsandbytes loading), the
trainer's accelerate setup (`make_accelerator`, `CaptionLoss`) and the captioner's prompt and
generation config. Sections, most important first:

  (a) weights       LLM memory after load, bf16 vs 4-bit nf4 (torch.cuda.memory_allocated)
  (b) stage2        8 frames -> linear projector (4,608 visual tokens) + ~400 caption tokens,
                    LoRA r 64, gradient checkpointing, 4-bit: batch 1, 2, 4, ... until OOM;
                    peak memory and samples/s after a warm-up step. (b') before/after: the
                    same step with the LLM's own full-logits loss, which kvcap used before it
                    computed logits only from the first caption position (same loss).
  (e) fits          does stage 2 fit a 24 GB card; what fits on 24 / 48 / 80 GB
  (c) stage1        stage-1 step from cached features vs frames through the frozen CLIP
  (d) caption       prefill + 400 forced new tokens (greedy), batch 1 / 4 / 16, linear and
                    perceiver projectors, 4-bit then bf16 (the adapters of a stage-2 model on)
  (f) stage2_bf16   stage 2 without quantization (for the 48 / 80 GB rows)
  (g) caption_lora  bf16 captioning at batch 1 with the stage-2 LoRA adapters as peft layers vs
                    folded into the weights (`merge_for_inference`, what `kvcap caption` loads)
  (h) caption_e2e   `kvcap caption` itself (subprocesses) on 1080p / 720p H.264 clips with checkpoints
                    `kvcap train` made (mlp2x_gelu and a 64-token mixer): videos/s, new tokens/s,
                    pipeline efficiency and roofline fraction, before (generation.engine=hf) / after
                    (static) columns; bench/caption_e2e.py. For a short device run:
                    `--only caption_e2e` (setup + this section).

`--only stage2_bf16,caption_lora` runs just those (plus the setup and the model they need), for
a second, short device run.

The bf16 and 4-bit models never share the GPU (freed, cache emptied, leftover recorded). Every
measurement is written to `--out` as soon as it is taken, so a killed run still leaves its
figures; `--budget-s` skips what would not finish in time (the bf16 load is budgeted for).
Prints a table per section, appends a dated row with the card's name to bench/RESULTS.md
(`## gpu`), and ends with `headline: stage2_peak_gib_batch1 = X (target <= 24)`.

`--tiny` swaps in kvcap's tiny dimensions on the CPU (fp32, 48-token captions, 8 new tokens at
batch 1 and 4, an OOM simulated at stage-2 batch 4) to check every code path in well under a
minute; its memory figures are tensor bytes and process RSS, not GPU numbers.

On a lent device machine (no PyPI there; it has its own torch): download the wheels it lacks
here, carry them, and run the bench from the copied tree (no install of kvcap needed):

    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        bitsandbytes==0.50.2 peft==0.21.2 transformers==5.24.0 regex==2026.11.19
    # bitsandbytes ships a library per CUDA version (43 MB): keep the CPU and CUDA 13.0 ones (the
    # device's torch is cu130) so the carry stays ~18 MB; .whl/ is git-ignored:
    zip -q -d .whl/bitsandbytes-*.whl 'bitsandbytes/libbitsandbytes_cuda1[12]*' \
        'bitsandbytes/libbitsandbytes_cuda132.so' 'bitsandbytes/libbitsandbytes_rocm*' 'bitsandbytes/libbitsandbytes_xpu*'
    # device run, carry=[".whl"], timeout_s=600:
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; \
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \
    PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 timeout -s TERM 570 python3 bench/gpu.py --budget-s 500 \
        --out $OUT/gpu-results.json --results $OUT/RESULTS-gpu.md --work-dir /tmp/kvcap-gpu | tee $OUT/gpu.log

Then copy gpu-results.json to bench/ and the row from RESULTS-gpu.md under `## gpu`.

Issue 17's end-to-end rows (section caption_e2e) in one device run: add PyAV to the wheels above
(`av`, the device's Python 3.12 takes av 19) and run only that section, which writes its
backbones, trains two checkpoints through `kvcap train` (stage 1 + 2, two steps each), encodes
its clips and runs `kvcap caption` per row, before (engine hf) and after (engine static):

    PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 timeout -s TERM 570 python3 bench/gpu.py --only caption_e2e \
        --budget-s 540 --new-tokens 400 --e2e-auto-clips 96 --out $OUT/gpu-e2e.json \
        --results $OUT/RESULTS-gpu.md --work-dir /tmp/kvcap-gpu | tee $OUT/gpu-e2e.log

Checkpoints now reference a local backbone by path and fingerprint instead of copying it, so
`best/` holds no copy of the 15.3 GiB LLM; caption_e2e still hard-links any copy it finds to the
original after each `kvcap train`, a no-op kept for older checkpoints on the 64 GiB disk. The
2026-11-27 H100 run took 493 s of a 485 s budget (the bf16 stage 2 was then measured by a second
run with `--only stage2_bf16,caption_lora --new-tokens 200 --budget-s 145`, 134 s).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402  (bench/benchlib.py: RESULTS.md rows, machine, commit)
sys.path.insert(0, str(ROOT / "src"))

GIB = 2**30
CARDS_GIB = (24, 48, 80)
# Memory a process holds outside PyTorch's allocator (CUDA context, cuBLAS workspaces, bnb).
CONTEXT_GIB = 1.0
STAGE2_TARGET_GIB = 24

# Published dimensions (config.json of openai/clip-vit-large-patch14-336 and Qwen/Qwen3-8B).
CLIP_L14_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5)
QWEN3_8B = dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                tie_word_embeddings=False, max_position_embeddings=40960, hidden_act="silu", attention_bias=False)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

SECTIONS = ("setup", "weights_nf4", "stage2", "fits", "stage1", "stage2_full_logits", "caption_nf4",
            "weights_bf16", "caption_bf16", "stage2_bf16", "caption_lora", "caption_e2e")
# Which loaded model a section needs (for --only: a model loads only when something needs it).
NEEDS_NF4 = ("stage2", "stage1", "stage2_full_logits", "caption_nf4")
NEEDS_BF16 = ("caption_bf16", "stage2_bf16", "caption_lora")
OOM_ERRORS: tuple[type[BaseException], ...] = ()


# ---------------------------------------------------------------------------------------------
# What a run does: real dimensions on the GPU, or kvcap's tiny ones on the CPU.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    tiny: bool
    device: str
    clip: dict
    qwen3: dict
    frames: int = 8
    caption_tokens: int = 400
    new_tokens: int = 400
    train_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    bf16_train_batches: tuple[int, ...] = (1, 2, 4)
    stage1_batch: int = 4
    gen_batches: tuple[int, ...] = (1, 16, 4)  # 16 before 4: the batched figure matters most
    timed_steps: int = 3
    simulate_oom_from: int | None = None
    first_step_guess_s: float = 40.0  # before anything was timed
    e2e_auto_clips: int = 96  # clips of an auto-batch row in caption_e2e (two batches of ~48)


def make_plan(args) -> Plan:
    if args.tiny:
        from kvcap.model.tiny.clip import TINY_CLIP_HIDDEN, TINY_CLIP_IMAGE_SIZE, TINY_CLIP_PATCH_SIZE
        from kvcap.model.tiny.qwen3 import TINY_QWEN3_HIDDEN

        clip = dict(hidden_size=TINY_CLIP_HIDDEN, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    image_size=TINY_CLIP_IMAGE_SIZE, patch_size=TINY_CLIP_PATCH_SIZE, projection_dim=64,
                    hidden_act="quick_gelu", layer_norm_eps=1e-5)
        qwen3 = dict(QWEN3_8B, vocab_size=None, hidden_size=TINY_QWEN3_HIDDEN, intermediate_size=128,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                     max_position_embeddings=4096)
        # Short captions and generations: the point is every code path, not the numbers.
        return Plan(tiny=True, device="cpu", clip=clip, qwen3=qwen3, caption_tokens=48, new_tokens=args.new_tokens or 8,
                    train_batches=(1, 2, 4, 8), bf16_train_batches=(1, 2), stage1_batch=2, gen_batches=(1, 4),
                    timed_steps=1, simulate_oom_from=args.simulate_oom_from or 4, first_step_guess_s=5.0,
                    e2e_auto_clips=args.e2e_auto_clips or 6)
    return Plan(tiny=False, device="cuda", clip=dict(CLIP_L14_336), qwen3=dict(QWEN3_8B),
                new_tokens=args.new_tokens or 400, simulate_oom_from=args.simulate_oom_from,
                e2e_auto_clips=args.e2e_auto_clips or 96)


# ---------------------------------------------------------------------------------------------
# Time budget, memory meter, the results file.
# ---------------------------------------------------------------------------------------------


class Budget:
    """Seconds left of `--budget-s`; `allows(estimate, reserve)` keeps `reserve` for later work."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, estimate: float, reserve: float = 0.0) -> bool:
        return self.left() - reserve >= estimate


class Memory:
    """GPU: torch's allocator counters. CPU (tiny): process peak RSS (a code-path stand-in)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = device == "cuda"

    @property
    def kind(self) -> str:
        return "cuda_allocator" if self.cuda else "cpu_rss"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def clear(self) -> None:
        # Only the GPU needs freed memory back at once (a full gc pass costs ~1 s on a CPU).
        if self.cuda:
            gc.collect()
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def allocated(self) -> int:
        return int(self.torch.cuda.memory_allocated()) if self.cuda else 0

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int:
        if self.cuda:
            return int(self.torch.cuda.max_memory_allocated())
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux

    def peak_reserved(self) -> int:
        return int(self.torch.cuda.max_memory_reserved()) if self.cuda else self.peak()


def gib(n: float | None) -> float | None:
    """Bytes -> GiB to 4 significant digits (so tiny models do not round to 0)."""
    return None if n is None else float(f"{n / GIB:.4g}")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


class Recorder:
    """The JSON of every figure, rewritten atomically after each measurement."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        from kvcap.fsutil import atomic_write_json

        self._write = atomic_write_json
        self.path = path
        self.data: dict[str, Any] = {"meta": meta, "sections": {}, "summary": {}}

    def section(self, name: str) -> dict[str, Any]:
        return self.data["sections"].setdefault(name, {"status": "pending"})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(self.path, self.data)


def run_section(rec: Recorder, name: str, budget: Budget, fn: Callable[[dict], Any], *, need_s: float = 0.0,
                reserve_s: float = 0.0, skip: str | None = None) -> Any:
    """Run one section into rec.sections[name]: ok / skipped (budget or reason) / error (one line)."""
    sec = rec.section(name)
    if skip:
        sec.update(status="skipped", reason=skip)
        print(f"[{name}] skipped: {skip}", flush=True)
        rec.save()
        return None
    if not budget.allows(need_s, reserve_s):
        sec.update(status="skipped", reason=f"budget: {budget.left():.0f} s left, needs ~{need_s + reserve_s:.0f} s")
        print(f"[{name}] skipped: {sec['reason']}", flush=True)
        rec.save()
        return None
    print(f"[{name}] start at {budget.elapsed():.0f} s", flush=True)
    start = time.perf_counter()
    sec["status"] = "running"
    try:
        result = fn(sec)
        sec["status"] = "ok"
        return result
    except Exception as exc:  # one failing section must not cost the others their numbers
        sec.update(status="error", error=one_line(exc), traceback=traceback.format_exc(limit=6)[-3000:])
        print(f"[{name}] ERROR {one_line(exc)}\n{sec['traceback']}", flush=True)
        return None
    finally:
        sec["elapsed_s"] = round(time.perf_counter() - start, 2)
        print(f"[{name}] {sec['status']} in {sec['elapsed_s']} s", flush=True)
        rec.save()


# ---------------------------------------------------------------------------------------------
# Writing the random backbones (real published configs, or tiny ones).
# ---------------------------------------------------------------------------------------------


def materialize_random(model, device: str, dtype) -> None:
    """A model built on the meta device -> real storage on `device`, weights ~ N(0, 0.02).

    Norm weights are 1 and biases 0 so activations stay in range (random, not degenerate).
    """
    import torch

    model.to(dtype=dtype)
    model.to_empty(device=device)
    with torch.no_grad():
        for module in model.modules():
            is_norm = isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")
            for name, param in module.named_parameters(recurse=False):
                if is_norm and name == "weight":
                    param.fill_(1.0)
                elif name == "bias":
                    param.zero_()
                else:
                    param.normal_(0.0, 0.02)


def write_clip(out_dir: Path, dims: dict, device: str) -> dict[str, Any]:
    """CLIPVisionModel (bf16 safetensors) + a CLIPImageProcessor config with CLIP's mean/std."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    start = time.perf_counter()
    config = CLIPVisionConfig(**dims)
    with torch.device("meta"):
        model = CLIPVisionModel(config)
    materialize_random(model, device, torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out_dir, safe_serialization=True)
    del model
    size = dims["image_size"]
    processor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True, "size": {"shortest_edge": size},
        "do_center_crop": True, "crop_size": {"height": size, "width": size},
        "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "do_convert_rgb": True, "resample": 3,
    }
    (out_dir / "preprocessor_config.json").write_text(json.dumps(processor, indent=2), encoding="utf-8")
    return {"params_m": round(params / 1e6, 1), "write_s": round(time.perf_counter() - start, 2)}


def write_qwen3(out_dir: Path, dims: dict, device: str) -> dict[str, Any]:
    """Qwen3ForCausalLM with random bf16 weights + kvcap's tiny Qwen3 tokenizer (Qwen's special
    tokens and chat template; its ids all fall inside the real 151,936-token vocabulary)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from kvcap.model.tiny import resolve_model_id

    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_id("tiny:qwen3"))
    tokenizer.save_pretrained(out_dir)
    dims = dict(dims)
    dims["vocab_size"] = dims.get("vocab_size") or len(tokenizer)
    if len(tokenizer) > dims["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the model's {dims['vocab_size']}")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen3Config(**dims, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad)
    with torch.device("meta"):
        model = Qwen3ForCausalLM(config)
    materialize_random(model, device, torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out_dir, safe_serialization=True)
    del model
    size = sum(f.stat().st_size for f in out_dir.glob("*.safetensors"))
    return {"params_b": round(params / 1e9, 3), "vocab_size": dims["vocab_size"], "tokenizer_len": len(tokenizer),
            "file_gib": gib(size), "write_s": round(time.perf_counter() - start, 2)}


def make_config(paths: dict[str, Path], quantization: str, projector: str, frames: int):
    """kvcap's defaults (LoRA r 64, gradient checkpointing, greedy) on the written backbones."""
    from kvcap.config import Config, apply_overrides

    return apply_overrides(Config(), {
        "model.vision": str(paths["clip"]), "model.llm": str(paths["qwen3"]), "model.quantization": quantization,
        "model.frames": frames, "model.gradient_checkpointing": True, "projector.name": projector,
    })


def make_caption(tokenizer, target: int) -> tuple[str, int]:
    """Korean caption text of about `target` tokens (kvcap's synthetic caption sentences)."""
    try:
        from kvcap.data.synth import caption_corpus

        sentences = caption_corpus(64, seed=9)
    except ImportError:  # the synth package needs numpy/PIL only, but stay usable without it
        sentences = ["맑은 하늘 아래 잔잔한 바다가 펼쳐져 있고 카메라가 천천히 오른쪽으로 이동한다."]
    text, i = "", 0
    while len(tokenizer.encode(text, add_special_tokens=False)) < target:
        text = (text + " " + sentences[i % len(sentences)]).strip()
        i += 1
    return text, len(tokenizer.encode(text, add_special_tokens=False))


# ---------------------------------------------------------------------------------------------
# Model helpers.
# ---------------------------------------------------------------------------------------------


def tensor_bytes(module) -> int:
    """Bytes of a module's parameters, buffers and bitsandbytes quantization states (deduplicated)."""
    import torch

    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()

    def add_state(state, depth: int = 0) -> None:
        if state is None or depth > 3:
            return
        for value in vars(state).values():
            add(value)
            if type(value).__name__ == "QuantState":
                add_state(value, depth + 1)

    for p in module.parameters():
        add(p)
        add_state(getattr(p, "quant_state", None))
    for b in module.buffers():
        add(b)
    return total


def load_captioner(cfg, plan: Plan, mem: Memory) -> tuple[Any, dict[str, Any]]:
    """Captioner.from_config -> (captioner, memory figures); LLM = total - vision - projector."""
    from kvcap.model.captioner import Captioner

    mem.clear()
    before = mem.allocated()
    start = time.perf_counter()
    captioner = Captioner.from_config(cfg, device=plan.device)
    mem.sync()
    load_s = time.perf_counter() - start
    llm_tensors = tensor_bytes(captioner.llm)
    vision, projector = tensor_bytes(captioner.vision), tensor_bytes(captioner.projector)
    if mem.cuda:
        total = mem.allocated() - before
        llm = total - vision - projector
    else:  # no allocator counters on the CPU: the tensors are the figure
        total, llm = llm_tensors + vision + projector, llm_tensors
    return captioner, {
        "quantization": cfg.model.quantization, "dtype": str(captioner.compute_dtype).replace("torch.", ""),
        "load_s": round(load_s, 2), "llm_bytes": int(llm), "llm_gib": gib(llm), "llm_tensor_gib": gib(llm_tensors),
        "vision_gib": gib(vision), "projector_gib": gib(projector), "captioner_gib": gib(total),
        "memory_kind": "cuda_allocated" if mem.cuda else "tensor_bytes",
    }


def free(mem: Memory, *objects) -> dict[str, Any]:
    """Drop the caller's references first (pass nothing alive), then empty the cache."""
    del objects
    mem.clear()
    return {"leftover_gib": gib(mem.allocated())}


def full_logits_module(captioner):
    """Like the trainer's `CaptionLoss(captioner)`, with `full_logits_loss` as the loss head."""
    from torch import nn

    class FullLogitsLoss(nn.Module):
        def __init__(self, cap):
            super().__init__()
            self.captioner = cap

        def forward(self, features, captions):
            return full_logits_loss(self.captioner, features, captions)

    return FullLogitsLoss(captioner)


def full_logits_loss(captioner, features, captions):
    """kvcap's loss head before this bench (the "before" of issue [8/8]): the LLM's own loss,
    which computes logits for all ~5,000 prompt + visual + caption positions. `Captioner.loss`
    now computes them only where a label is; the value must be the same."""
    batch = captioner.training_batch(features, captions)
    return captioner.llm(**batch, use_cache=False).loss


def measure_training(captioner, cfg, stage: int, batch: int, captions: list[str], *, plan: Plan, mem: Memory,
                     uncached: bool = False, loss: str = "kvcap", steps: int | None = None) -> dict[str, Any]:
    """One warm-up + `steps` timed optimizer steps, as the trainer takes them (accelerate bf16
    autocast on GPU, AdamW, clipping). OOM -> status "oom"; everything is freed either way."""
    import torch

    from kvcap.trainer.accel import make_accelerator
    from kvcap.trainer.steps import CaptionLoss

    steps = plan.timed_steps if steps is None else steps
    stage_cfg = cfg.train.stage1 if stage == 1 else cfg.train.stage2
    vision = captioner.vision
    tokens = vision.tokens_per_frame
    if uncached:  # what the video decoder hands over: uint8 frames, through the frozen CLIP each step
        frames = torch.randint(0, 256, (batch, plan.frames, vision.image_size, vision.image_size, 3), dtype=torch.uint8)
        cached = None
    else:  # what the feature cache hands over
        frames = None
        cached = torch.randn(batch, plan.frames, tokens, vision.hidden_size, dtype=vision.dtype, device=plan.device)
    acc = make_accelerator(cfg.model.dtype)
    params = [p for p in captioner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=stage_cfg.lr, weight_decay=cfg.train.weight_decay)
    head = CaptionLoss(captioner) if loss == "kvcap" else full_logits_module(captioner)
    model = acc.prepare_model(head, device_placement=False)
    opt = acc.prepare_optimizer(optimizer, device_placement=False)
    captioner.train()
    mem.clear()
    mem.reset_peak()
    times: list[float] = []
    losses: list[float] = []
    row: dict[str, Any] = {"batch": batch, "status": "ok"}
    value = features = None
    try:
        for _ in range(1 + steps):
            mem.sync()
            start = time.perf_counter()
            features = captioner.encode(frames) if uncached else cached
            value = model(features, captions[:1] * batch)
            if plan.simulate_oom_from and batch >= plan.simulate_oom_from:
                raise OOM_ERRORS[0](f"simulated OOM at batch {batch} (--simulate-oom-from {plan.simulate_oom_from})")
            acc.backward(value)
            acc.clip_grad_norm_(params, cfg.train.max_grad_norm or float("inf"))
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(value.detach()))
            value = features = None
            mem.sync()
            times.append(time.perf_counter() - start)
    except OOM_ERRORS as exc:
        row.update(status="oom", error=one_line(exc))
    value = features = cached = None
    row["peak_gib"] = gib(mem.peak())
    row["peak_reserved_gib"] = gib(mem.peak_reserved())
    optimizer.zero_grad(set_to_none=True)
    acc.free_memory()
    del model, opt, optimizer, head, acc
    mem.clear()
    captioner.eval()
    if times:
        row["warmup_s"] = round(times[0], 3)
    timed = times[1:]
    if timed:
        step_s = sum(timed) / len(timed)
        row.update(step_s=round(step_s, 3), samples_per_s=round(batch / step_s, 3), timed_steps=len(timed),
                   loss=round(losses[-1], 4))
    elif row["status"] == "ok" and steps > 0:
        row.update(status="error", error="no step was timed")
    return row


def training_estimate(rows: list[dict], batch: int, steps: int, guess: float) -> float:
    """Seconds for warm-up + `steps` at `batch`, scaled from the last timed batch."""
    timed = [r for r in rows if r.get("step_s")]
    if not timed:
        return guess
    last = timed[-1]
    return last["step_s"] * batch / last["batch"] * (1 + steps) * 1.2 + 5


def sweep_training(sec: dict, rows_key: str, captioner, cfg, batches, captions, *, plan, mem, budget, rec,
                   reserve_s: float = 0.0) -> None:
    """Batch 1, 2, 4, ... until OOM (or the budget); `largest_batch` = the largest that ran."""
    rows = sec.setdefault(rows_key, [])
    for batch in batches:
        steps = plan.timed_steps if batch == 1 else min(plan.timed_steps, 2)
        need = training_estimate(rows, batch, steps, plan.first_step_guess_s)
        if not budget.allows(need, reserve_s):
            rows.append({"batch": batch, "status": "skipped", "reason": f"budget ({budget.left():.0f} s left, needs ~{need:.0f} s)"})
            break
        row = measure_training(captioner, cfg, 2, batch, captions, plan=plan, mem=mem)
        rows.append(row)
        print(f"  batch {batch}: {row['status']} peak {row['peak_gib']} GiB"
              + (f", {row['samples_per_s']} samples/s" if row.get("samples_per_s") else ""), flush=True)
        rec.save()
        if row["status"] != "ok":
            break
    ok = [r["batch"] for r in rows if r["status"] == "ok"]
    sec["largest_batch"] = max(ok) if ok else 0
    sec["limit_found"] = any(r["status"] == "oom" for r in rows)


# ---------------------------------------------------------------------------------------------
# Generation.
# ---------------------------------------------------------------------------------------------


def timed_generate(captioner, features, new_tokens: int, mem: Memory) -> tuple[float, int]:
    """Prefill + exactly `new_tokens` greedy tokens (EOS suppressed by min_new_tokens) through the
    captioner's own prompt batch and generation config -> (seconds, new tokens per row)."""
    import torch

    gen = captioner.generation_config(None, max_new_tokens=new_tokens)
    gen.min_new_tokens = new_tokens
    mem.sync()
    start = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Passing `.*` with `inputs_embeds`")
        embeds, mask = captioner.prompt_batch(features)  # projector + chat template, left padded
        output = captioner.llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=gen)
    mem.sync()
    return time.perf_counter() - start, int(output.shape[1])


def perceiver_twin(captioner, cfg):
    """The same backbones with kvcap's perceiver projector (from the registry and the config's
    [projector] defaults), via the Captioner constructor: no second 16 GB load."""
    import copy

    from kvcap.model.captioner import Captioner
    from kvcap.model.projectors import build_projector, projector_kwargs

    projector = build_projector("perceiver", captioner.vision.hidden_size, captioner.llm.config.hidden_size,
                                frames=captioner.frames, patches=captioner.vision.tokens_per_frame,
                                **projector_kwargs(cfg.projector, "perceiver"))
    spec = copy.deepcopy(captioner.spec)
    spec.projector = type(spec.projector)(name="perceiver")
    return Captioner(captioner.vision, projector.to(captioner.device), captioner.llm, captioner.tokenizer, spec)


def measure_captioning(sec: dict, captioner, cfg, quant: str, *, plan: Plan, mem: Memory, budget: Budget,
                       rec: Recorder, reserve_s: float = 0.0) -> None:
    import torch

    rows = sec.setdefault("rows", [])
    models = {"linear": captioner, "perceiver": perceiver_twin(captioner, cfg)}
    vision = captioner.vision
    for cap in models.values():
        cap.eval()
        warm = torch.randn(1, plan.frames, vision.tokens_per_frame, vision.hidden_size, dtype=vision.dtype,
                           device=plan.device)
        timed_generate(cap, warm, 2, mem)  # first-call costs (kernels, handles) out of the figures
    last: dict[str, dict] = {}
    stopped: set[str] = set()
    for batch in plan.gen_batches:
        for name, cap in models.items():
            row: dict[str, Any] = {"quant": quant, "projector": name, "batch": batch,
                                   "visual_tokens": cap.num_visual_tokens,
                                   "prompt_tokens": cap.prompt.prompt_length + cap.num_visual_tokens}
            prev = last.get(name)
            need = plan.first_step_guess_s if prev is None else (
                prev["total_s"] * 1.5 + prev["prefill_s"] * batch / prev["batch"] + 2)
            if name in stopped:
                row.update(status="skipped", reason="a smaller batch ran out of memory")
            elif not budget.allows(need, reserve_s):
                row.update(status="skipped", reason=f"budget ({budget.left():.0f} s left, needs ~{need:.0f} s)")
            else:
                try:
                    features = torch.randn(batch, plan.frames, vision.tokens_per_frame, vision.hidden_size,
                                           dtype=vision.dtype, device=plan.device)
                    prefill_s, _ = timed_generate(cap, features, 1, mem)
                    mem.clear()
                    mem.reset_peak()
                    total_s, produced = timed_generate(cap, features, plan.new_tokens, mem)
                    decode_s = total_s - prefill_s  # the prefill run made the first token too
                    decode_rate = batch * (produced - 1) / decode_s if decode_s > 0 and produced > 1 else None
                    row.update(status="ok", prefill_s=round(prefill_s, 3), total_s=round(total_s, 3),
                               new_tokens=produced, tokens_per_s=round(batch * produced / total_s, 2),
                               decode_tokens_per_s=None if decode_rate is None else round(decode_rate, 2),
                               videos_per_s=round(batch / total_s, 4), peak_gib=gib(mem.peak()),
                               peak_reserved_gib=gib(mem.peak_reserved()))
                    if produced != plan.new_tokens:
                        row.update(status="error", error=f"generated {produced} tokens, asked for {plan.new_tokens}")
                    last[name] = row
                except OOM_ERRORS as exc:
                    row.update(status="oom", error=one_line(exc))
                    stopped.add(name)
                features = None
                mem.clear()
            rows.append(row)
            print(f"  {quant} {name} batch {batch}: {row['status']}"
                  + (f" {row['tokens_per_s']} tok/s, {row['videos_per_s']} videos/s" if row.get("tokens_per_s") else ""),
                  flush=True)
            rec.save()
    if any(r["status"] == "error" for r in rows if r["quant"] == quant):
        raise RuntimeError("a generation run did not produce the forced number of tokens")
    models.clear()


# ---------------------------------------------------------------------------------------------
# Derived figures: the weight ratio and what fits where.
# ---------------------------------------------------------------------------------------------


def fits(row: dict, card: int) -> bool:
    return row.get("status") == "ok" and row["peak_reserved_gib"] + CONTEXT_GIB <= card


def largest_fitting(rows: list[dict], card: int) -> str:
    """The largest batch of a doubling sweep that fits `card`:

    '4' when batch 8 was tried and ran out of memory or needs more than the card; '>=4' when
    nothing larger was tried; '>=1, <8' when the next batch tried was not the double; '-' when
    none fits; '?' when nothing ran.
    """
    tried = [r for r in rows if r.get("status") in ("ok", "oom")]
    fitting = [r["batch"] for r in tried if fits(r, card)]
    if not fitting:
        return "-" if tried else "?"
    best = max(fitting)
    failing = sorted(r["batch"] for r in tried if r["batch"] > best)
    if not failing:
        return f">={best}"
    return str(best) if failing[0] == 2 * best else f">={best}, <{failing[0]}"


def compute_fits(rec: Recorder) -> dict[str, Any]:
    s = rec.data["sections"]
    stage2 = s.get("stage2", {})
    rows2 = stage2.get("rows", [])
    b1 = next((r for r in rows2 if r["batch"] == 1 and r.get("status") == "ok"), None)
    out: dict[str, Any] = {"rule": f"peak reserved + {CONTEXT_GIB:g} GiB context <= card GiB", "cards_gib": list(CARDS_GIB)}
    if b1:
        out.update(stage2_peak_gib_batch1=b1["peak_gib"], stage2_peak_reserved_gib_batch1=b1["peak_reserved_gib"],
                   fits_24gb=fits(b1, 24))
    table: list[dict[str, Any]] = []

    def add(label: str, rows: list[dict]) -> None:
        if rows:
            table.append({"what": label, **{f"{c}GB": largest_fitting(rows, c) for c in CARDS_GIB}})

    add("stage 2, 4-bit, LoRA r64, GC (max batch)", rows2)
    add("before: stage 2, 4-bit, full-logits loss (max batch)", s.get("stage2_full_logits", {}).get("rows", []))
    add("stage 2, bf16, LoRA r64, GC (max batch)", s.get("stage2_bf16", {}).get("rows", []))
    add("stage 1, 4-bit, cached features (batch)", [r for r in s.get("stage1", {}).get("rows", []) if r.get("mode") == "cached"])
    for quant in ("nf4", "bf16"):
        cap_rows = s.get(f"caption_{quant}", {}).get("rows", [])
        for proj in ("linear", "perceiver"):
            # generation runs 1, 16, 4: sorted they are not a doubling sweep, so 4 -> 16 reads '>=4, <16'
            add(f"captioning, {quant}, {proj} (max batch)", [r for r in cap_rows if r["projector"] == proj])
    out["table"] = table
    return out


def summarize(rec: Recorder) -> dict[str, Any]:
    s = rec.data["sections"]
    top = max(rec.data["meta"]["gen_batches"])
    summary: dict[str, Any] = {}
    w4, w16 = s.get("weights_nf4", {}), s.get("weights_bf16", {})
    if w4.get("llm_bytes") and w16.get("llm_bytes"):
        ratio = w4["llm_bytes"] / w16["llm_bytes"]
        summary["llm_bf16_gib"] = w16["llm_gib"]
        summary["llm_nf4_gib"] = w4["llm_gib"]
        summary["nf4_over_bf16"] = round(ratio, 4)
        summary["nf4_cut_pct"] = round(100 * (1 - ratio), 1)
    fit = s.get("fits", {})
    for key in ("stage2_peak_gib_batch1", "fits_24gb"):
        if key in fit:
            summary[key] = fit[key]
    rows2 = s.get("stage2", {}).get("rows", [])
    b1 = next((r for r in rows2 if r["batch"] == 1 and r.get("samples_per_s")), None)
    if b1:
        summary["stage2_samples_per_s_batch1"] = b1["samples_per_s"]
    if "largest_batch" in s.get("stage2", {}):
        summary["stage2_largest_batch"] = s["stage2"]["largest_batch"]
    tail = s.get("stage2_full_logits", {}).get("rows", [])
    t1 = next((r for r in tail if r["batch"] == 1 and r.get("status") == "ok"), None)
    if b1 and t1:
        summary["full_logits_peak_gib_batch1"] = t1["peak_gib"]
        summary["caption_logits_saves_gib_batch1"] = round(t1["peak_gib"] - b1["peak_gib"], 3)
    st1 = s.get("stage1", {})
    if "cache_speedup" in st1:
        summary["stage1_cache_speedup"] = st1["cache_speedup"]
    if "merge_speedup" in s.get("caption_lora", {}):
        summary["caption_lora_merge_speedup"] = s["caption_lora"]["merge_speedup"]
    for quant in ("nf4", "bf16"):
        for r in s.get(f"caption_{quant}", {}).get("rows", []):
            if r.get("status") == "ok" and r["batch"] == top:
                summary[f"caption_tok_s_{quant}_{r['projector']}_bmax"] = r["tokens_per_s"]
    return summary


# ---------------------------------------------------------------------------------------------
# Printing and RESULTS.md.
# ---------------------------------------------------------------------------------------------


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for r in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if not rows:
        print("  (no rows: section skipped or failed)")


def print_report(rec: Recorder) -> None:
    s, m = rec.data["sections"], rec.data["meta"]
    print(f"\n=== kvcap GPU bench: {m['card']} ({m['mode']}) ===")
    status = [[name, s.get(name, {}).get("status", "not run"), s.get(name, {}).get("elapsed_s"),
               s.get(name, {}).get("reason") or s.get(name, {}).get("error")] for name in SECTIONS]
    print_table("sections", ["section", "status", "s", "note"], status)
    w = [s.get("weights_bf16", {}), s.get("weights_nf4", {})]
    print_table("(a) LLM weight memory after load (GiB)", ["quant", "dtype", "llm", "llm tensors", "vision", "projector", "load s"],
                [[x.get("quantization"), x.get("dtype"), x.get("llm_gib"), x.get("llm_tensor_gib"), x.get("vision_gib"),
                  x.get("projector_gib"), x.get("load_s")] for x in w if x.get("llm_gib") is not None])
    summary = rec.data["summary"]
    if "nf4_over_bf16" in summary:
        print(f"  nf4 / bf16 = {summary['nf4_over_bf16']} -> 4-bit cuts {summary['nf4_cut_pct']}% (claim: ~75%)")

    def train_rows(rows):
        return [[r["batch"], r["status"], r.get("peak_gib"), r.get("peak_reserved_gib"), r.get("step_s"),
                 r.get("samples_per_s"), r.get("loss")] for r in rows]

    head = ["batch", "status", "peak GiB", "reserved GiB", "step s", "samples/s", "loss"]
    st2 = s.get("stage2", {})
    print_table(f"(b) stage 2, 4-bit, linear, {st2.get('seq_len', '?')} tokens/sample (visual {st2.get('visual_tokens', '?')}, "
                f"caption {st2.get('caption_tokens', '?')}), LoRA r{st2.get('lora_r', '?')}, GC", head, train_rows(st2.get("rows", [])))
    tail = s.get("stage2_full_logits", {})
    print_table("(b') before: stage 2 with the LLM's full-logits loss (kvcap now keeps caption logits only; same loss)",
                head, train_rows(tail.get("rows", [])))
    if "loss_abs_diff" in tail:
        print(f"  |loss(kvcap) - loss(full logits)| = {tail['loss_abs_diff']}")
    fit = s.get("fits", {})
    if fit.get("table"):
        print_table(f"(e) what fits ({fit['rule']}); stage 2 batch 1 fits 24 GB: {fit.get('fits_24gb')}",
                    ["what"] + [f"{c} GB" for c in CARDS_GIB], [[r["what"]] + [r[f"{c}GB"] for c in CARDS_GIB] for r in fit["table"]])
    st1 = s.get("stage1", {})
    print_table(f"(c) stage 1, 4-bit, batch {st1.get('batch', '?')}: cached features vs frames through CLIP",
                ["mode", "status", "step s", "samples/s", "peak GiB"],
                [[r.get("mode"), r["status"], r.get("step_s"), r.get("samples_per_s"), r.get("peak_gib")] for r in st1.get("rows", [])])
    if "cache_speedup" in st1:
        print(f"  cached is {st1['cache_speedup']}x the speed of uncached ({st1['cache_time_saved_pct']}% less time per step)")
    cap_rows = s.get("caption_nf4", {}).get("rows", []) + s.get("caption_bf16", {}).get("rows", [])
    cap_rows = sorted(cap_rows, key=lambda r: (r["quant"], r["projector"], r["batch"]))
    print_table(f"(d) captioning: prefill + {m['new_tokens']} forced new tokens, greedy "
                "(nf4: stage-2 LoRA as peft layers; bf16: plain weights, as with merged adapters)",
                ["quant", "projector", "batch", "prompt tok", "status", "prefill s", "total s", "tok/s", "decode tok/s", "videos/s", "peak GiB"],
                [[r["quant"], r["projector"], r["batch"], r["prompt_tokens"], r["status"], r.get("prefill_s"), r.get("total_s"),
                  r.get("tokens_per_s"), r.get("decode_tokens_per_s"), r.get("videos_per_s"), r.get("peak_gib")] for r in cap_rows])
    print_table("(f) stage 2, bf16 (no quantization), linear", head, train_rows(s.get("stage2_bf16", {}).get("rows", [])))
    lora = s.get("caption_lora", {})
    print_table(f"(g) bf16 captioning, batch 1, {m['new_tokens']} new tokens: LoRA as peft layers vs merged into the weights",
                ["adapters", "status", "prefill s", "total s", "tok/s", "ms/token"],
                [[r["adapters"], r["status"], r.get("prefill_s"), r.get("total_s"), r.get("tokens_per_s"), r.get("ms_per_token")]
                 for r in lora.get("rows", [])])
    if "merge_speedup" in lora:
        print(f"  merged is {lora['merge_speedup']}x the speed of peft layers")
    e2e = s.get("caption_e2e", {})
    if e2e.get("rows"):
        import caption_e2e

        headers, body = caption_e2e.table(e2e)
        print_table(f"(h) `kvcap caption` end to end, {e2e.get('new_tokens')} forced new tokens, copy bandwidth "
                    f"{e2e.get('bandwidth_gbps')} GB/s (before = engine hf, after = static)", headers, body)
        for name, figures in e2e.get("summary", {}).items():
            print(f"  {name}: {figures}")


RESULTS_HEADING = "## gpu"
RESULTS_HEADER = (
    "| date | card | commit | run | LLM bf16 GiB | LLM nf4 GiB | nf4 cut | stage-2 peak b1 GiB | fits 24 GB | "
    "stage-2 max batch | stage-2 samples/s b1 | before: full-logits peak b1 GiB | stage-1 cache speedup | "
    "caption tok/s nf4 linear/perceiver (largest batch) | wall s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def results_row(rec: Recorder) -> str:
    m, sm = rec.data["meta"], rec.data["summary"]

    def v(key: str, suffix: str = "") -> str:
        return "-" if sm.get(key) is None else f"{sm[key]}{suffix}"

    run = "CPU tiny code-path check (not GPU numbers)" if m["mode"] == "cpu-tiny" else f"device run, budget {m['budget_s']:.0f} s"
    skipped = [n for n, x in rec.data["sections"].items() if x.get("status") != "ok"]
    if skipped:
        run += f"; not ok: {', '.join(skipped)}"
    tok = f"{v('caption_tok_s_nf4_linear_bmax')}/{v('caption_tok_s_nf4_perceiver_bmax')} (b{max(m['gen_batches'])})"
    return (f"| {m['date']} | {m['card']} | {m['commit']} | {run} | {v('llm_bf16_gib')} | {v('llm_nf4_gib')} | "
            f"{v('nf4_cut_pct', '%')} | {v('stage2_peak_gib_batch1')} | {v('fits_24gb')} | {v('stage2_largest_batch')} | "
            f"{v('stage2_samples_per_s_batch1')} | {v('full_logits_peak_gib_batch1')} | {v('stage1_cache_speedup', 'x')} | "
            f"{tok} | {m.get('wall_s', '-')} |")


def append_results(path: Path, row: str) -> None:
    """Insert `row` at the end of the `## gpu` table (created if missing); other sections untouched."""
    benchlib.append_row(RESULTS_HEADING, RESULTS_HEADER, row, path)


def headline(rec: Recorder) -> str:
    value = rec.data["summary"].get("stage2_peak_gib_batch1")
    shown = "nan" if value is None else f"{value:.2f}"
    return f"headline: stage2_peak_gib_batch1 = {shown} (target <= {STAGE2_TARGET_GIB})"


# ---------------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------------


def environment(plan: Plan, args) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "missing"

    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        card = torch.cuda.get_device_name(0)
        card_gib = round(props.total_memory / GIB, 1)
    else:
        card, card_gib = f"CPU ({platform.machine()}, {os.cpu_count()} cores)", None
    commit = benchlib.git_commit()  # "?" where the device's copy of the tree has no git
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), "mode": "cpu-tiny" if plan.tiny else "gpu",
        "card": card, "card_gib": card_gib, "host": platform.node(), "commit": commit,
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": version("transformers"), "peft": version("peft"), "bitsandbytes": version("bitsandbytes"),
        "accelerate": version("accelerate"), "budget_s": args.budget_s, "new_tokens": plan.new_tokens,
        "gen_batches": list(plan.gen_batches), "train_batches": list(plan.train_batches),
        "frames": plan.frames, "caption_tokens_target": plan.caption_tokens, "clip": plan.clip, "qwen3": plan.qwen3,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }


class Bench:
    """One run: the sections in order, each a method taking its own results dict (`sec`).

    The 4-bit phase (a nf4, b, e, c, b', d nf4) shares one loaded captioner; it is freed before
    the bf16 phase (a bf16, d bf16, f) loads the other, so the two never share the GPU.
    """

    def __init__(self, args, plan: Plan):
        self.args, self.plan = args, plan
        self.budget = Budget(args.budget_s)
        self.mem = Memory(plan.device)
        self.rec = Recorder(Path(args.out), environment(plan, args))
        self.work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="kvcap-gpu-bench-"))
        names = ("clip-tiny-random", "qwen3-tiny-random") if plan.tiny else (
            "clip-vit-large-patch14-336-random", "qwen3-8b-random")
        self.paths = {"clip": self.work / names[0], "qwen3": self.work / names[1]}
        self.cap = self.cfg = None  # the captioner of the phase in progress, and its config
        self.captions: list[str] = []
        self.reserve_s = 0.0  # budget kept for the bf16 load while the 4-bit phase runs

    # -- plumbing -------------------------------------------------------------------------------

    def selected(self, *names: str) -> bool:
        """Whether --only (if given) asks for any of `names`."""
        return self.args.only is None or bool(self.args.only.intersection(names))

    def section(self, name: str, fn: Callable[[dict], Any], *, need_s: float = 0.0, reserve_s: float = 0.0,
                skip: str | None = None) -> Any:
        needed = {"setup": SECTIONS, "fits": SECTIONS, "weights_nf4": NEEDS_NF4, "weights_bf16": NEEDS_BF16}
        if not self.selected(*needed.get(name, (name,))):
            skip = "not selected (--only)"
        return run_section(self.rec, name, self.budget, fn, need_s=need_s, reserve_s=reserve_s, skip=skip)

    def status(self, name: str) -> str:
        return self.rec.section(name)["status"]

    def sweep(self, sec: dict, batches, reserve_s: float = 0.0) -> None:
        sweep_training(sec, "rows", self.cap, self.cfg, batches, self.captions, plan=self.plan, mem=self.mem,
                       budget=self.budget, rec=self.rec, reserve_s=reserve_s)

    def apply_stage(self, stage: int) -> None:
        from kvcap.model.trainable import plan_for_stage

        stage_cfg = self.cfg.train.stage1 if stage == 1 else self.cfg.train.stage2
        self.cap.apply_plan(plan_for_stage(stage_cfg), self.cfg.lora if stage == 2 else None)

    def release(self, weights_section: str) -> None:
        self.cap = self.cfg = None
        self.rec.section(weights_section).update(free(self.mem))

    # -- sections -------------------------------------------------------------------------------

    def setup(self, sec: dict) -> None:
        """Random backbones with the published dimensions (reused from --work-dir when there)."""
        plan = self.plan
        for name, writer, dims in (("clip", write_clip, plan.clip), ("qwen3", write_qwen3, plan.qwen3)):
            path = self.paths[name]
            if (path / "config.json").is_file() and not self.args.rewrite:
                sec[name] = {"reused": str(path)}
                continue
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            sec[name] = writer(path, dims, plan.device)
            self.mem.clear()
            print(f"  wrote {name}: {sec[name]}", flush=True)
        sec["leftover_gib"] = gib(self.mem.allocated())

    def weights(self, quantization: str) -> Callable[[dict], None]:
        def load(sec: dict) -> None:
            self.cfg = make_config(self.paths, quantization, "linear", self.plan.frames)
            self.cap, figures = load_captioner(self.cfg, self.plan, self.mem)
            sec.update(figures)
            if not self.captions:
                text, count = make_caption(self.cap.tokenizer, self.plan.caption_tokens)
                self.captions = [text]
                sec["caption_text_tokens"] = count

        return load

    def stage2(self, sec: dict) -> None:
        """(b) the seed's stage 2 on the 4-bit model: batch 1, 2, 4, ... until OOM."""
        cap = self.cap
        self.apply_stage(2)
        target = len(cap.tokenize_caption(self.captions[0]))
        sec.update(trainable=cap.trainable_summary(), lora_r=self.cfg.lora.r, visual_tokens=cap.num_visual_tokens,
                   caption_tokens=target, seq_len=cap.prompt.prompt_length + cap.num_visual_tokens + target,
                   gradient_checkpointing=True, quantization="4bit")
        self.sweep(sec, self.plan.train_batches, self.reserve_s)
        first = sec["rows"][0]
        if not (first["batch"] == 1 and first["status"] == "ok"):
            raise RuntimeError(f"stage 2 at batch 1 did not run: {first.get('error') or first.get('reason') or first['status']}")

    def fits(self, sec: dict) -> None:
        sec.update(compute_fits(self.rec))

    def stage1(self, sec: dict) -> None:
        """(c) a stage-1 step from cached features vs from frames through the frozen CLIP."""
        self.apply_stage(1)  # projector FULL, LLM frozen
        llm = self.cap.llm
        # Stage 1 trains no adapter: take the LoRA layers stage 2 added out of the path.
        adapters_off = llm.disable_adapter() if hasattr(llm, "disable_adapter") else contextlib.nullcontext()
        rows = sec.setdefault("rows", [])
        batch = self.plan.stage1_batch
        with adapters_off:
            for mode in ("cached", "uncached"):
                while True:
                    row = measure_training(self.cap, self.cfg, 1, batch, self.captions, plan=self.plan, mem=self.mem,
                                           uncached=mode == "uncached", steps=min(self.plan.timed_steps, 2))
                    row["mode"] = mode
                    if row["status"] == "oom" and batch > 1 and mode == "cached":
                        batch //= 2  # the configured batch does not fit this card: halve and retry
                        continue
                    break
                rows.append(row)
                self.rec.save()
        sec["batch"] = batch
        times = {r["mode"]: r.get("step_s") for r in rows if r["status"] == "ok"}
        if not (times.get("cached") and times.get("uncached")):
            raise RuntimeError("stage 1 did not time both modes")
        sec["cache_speedup"] = round(times["uncached"] / times["cached"], 3)
        sec["cache_time_saved_pct"] = round(100 * (1 - times["cached"] / times["uncached"]), 1)
        sec["note"] = "uncached = uint8 frames through the frozen CLIP each step (video decoding not included)"

    def stage2_full(self, sec: dict) -> None:
        """(b') before/after: stage 2 with the old full-logits loss head at batch 1 and at kvcap's
        largest batch (does the old head run out of memory there?); then both heads must agree."""
        import torch

        cap, plan = self.cap, self.plan
        self.apply_stage(2)  # the adapters train again
        rows = sec.setdefault("rows", [])
        stage2_rows = self.rec.section("stage2").get("rows", [])
        largest = max([r["batch"] for r in stage2_rows if r["status"] == "ok"], default=1)
        for batch in sorted({1, largest}):
            need = training_estimate(stage2_rows, batch, 0, plan.first_step_guess_s)
            if batch > 1 and not self.budget.allows(need, self.reserve_s):
                rows.append({"batch": batch, "status": "skipped", "reason": "budget"})
                continue
            # The larger batch only has to show whether it fits: one (warm-up) step, untimed.
            rows.append(measure_training(cap, self.cfg, 2, batch, self.captions, plan=plan, mem=self.mem, loss="full",
                                         steps=0 if batch > 1 else min(plan.timed_steps, 2)))
            self.rec.save()
        sec["largest_batch"] = max([r["batch"] for r in rows if r["status"] == "ok"], default=0)
        features = torch.randn(1, plan.frames, cap.vision.tokens_per_frame, cap.vision.hidden_size,
                               dtype=cap.vision.dtype, device=plan.device)
        cap.eval()
        with torch.no_grad(), torch.autocast(plan.device, dtype=cap.compute_dtype, enabled=self.mem.cuda):
            a = float(cap.loss(features, self.captions))
            b = float(full_logits_loss(cap, features, self.captions))
        sec["loss_abs_diff"] = round(abs(a - b), 6)
        if not abs(a - b) <= 1e-3 * max(1.0, abs(a)) + (2e-2 if self.mem.cuda else 0):
            raise RuntimeError(f"caption-only logits changed the loss: {a} vs full logits {b}")

    def caption(self, quant: str, reserve_s: float) -> Callable[[dict], None]:
        def measure(sec: dict) -> None:
            measure_captioning(sec, self.cap, self.cfg, quant, plan=self.plan, mem=self.mem, budget=self.budget,
                               rec=self.rec, reserve_s=reserve_s)

        return measure

    def stage2_bf16(self, sec: dict) -> None:
        """(f) stage 2 without quantization, for the 48 / 80 GB rows."""
        self.apply_stage(2)
        sec.update(lora_r=self.cfg.lora.r, quantization="none", gradient_checkpointing=True)
        self.sweep(sec, self.plan.bf16_train_batches)

    def caption_lora(self, sec: dict) -> None:
        """(g) bf16 batch-1 captioning, LoRA as peft layers vs merged into the weights."""
        import torch

        from kvcap.model.trainable import is_peft_model, merge_for_inference

        cap, plan, vision = self.cap, self.plan, self.cap.vision
        if not is_peft_model(cap.llm):
            self.apply_stage(2)
        cap.eval()
        features = torch.randn(1, plan.frames, vision.tokens_per_frame, vision.hidden_size, dtype=vision.dtype,
                               device=plan.device)
        rows = sec.setdefault("rows", [])
        for adapters in ("peft layers", "merged"):
            if adapters == "merged":
                cap.llm = merge_for_inference(cap.llm)
                if is_peft_model(cap.llm):
                    raise RuntimeError("merge_for_inference left the bf16 LLM wrapped")
            timed_generate(cap, features, 2, self.mem)  # warm-up
            prefill_s, _ = timed_generate(cap, features, 1, self.mem)
            total_s, produced = timed_generate(cap, features, plan.new_tokens, self.mem)
            decode_s = total_s - prefill_s
            rows.append({"quant": "bf16", "projector": "linear", "batch": 1, "adapters": adapters, "status": "ok",
                         "prefill_s": round(prefill_s, 3), "total_s": round(total_s, 3), "new_tokens": produced,
                         "tokens_per_s": round(produced / total_s, 2),
                         "decode_tokens_per_s": round((produced - 1) / decode_s, 2) if decode_s > 0 else None,
                         "ms_per_token": round(1000 * total_s / produced, 1)})
            print(f"  bf16 linear batch 1, adapters {adapters}: {rows[-1]['tokens_per_s']} tok/s", flush=True)
            self.rec.save()
        sec["merge_speedup"] = round(rows[0]["total_s"] / rows[1]["total_s"], 3)

    def caption_e2e(self, sec: dict) -> None:
        """(h) `kvcap caption` end to end through the CLI (bench/caption_e2e.py)."""
        import caption_e2e

        llm = dict(self.plan.qwen3)
        if not llm.get("vocab_size"):
            llm.update(json.loads((self.paths["qwen3"] / "config.json").read_text(encoding="utf-8")))
        self.mem.clear()
        caption_e2e.run_section(sec, work=self.work, paths=self.paths, llm=llm, tiny=self.plan.tiny,
                                device=self.plan.device, new_tokens=self.plan.new_tokens,
                                auto_clips=self.plan.e2e_auto_clips, save=self.rec.save, time_left=self.budget.left)
        if not any(r.get("status") == "ok" for r in sec.get("rows", [])):
            raise RuntimeError("no end-to-end captioning row ran")

    # -- the order ------------------------------------------------------------------------------

    def run(self) -> int:
        guess = self.plan.first_step_guess_s

        def on_term(signum, frame):  # a timeout's SIGTERM still writes the report below
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, on_term)
        try:
            self.section("setup", self.setup)
            no_setup = None if self.status("setup") == "ok" else f"no backbones (setup {self.status('setup')})"

            self.section("weights_nf4", self.weights("4bit"), skip=no_setup)
            no_model = None if self.cap is not None else "the 4-bit model did not load"
            # Keep time for the bf16 load: about the 4-bit load again, plus slack.
            self.reserve_s = (self.rec.section("weights_nf4").get("load_s") or 30) * 1.5 + 20
            self.section("stage2", self.stage2, skip=no_model)
            self.section("fits", self.fits)
            # Two modes of warm-up + 2 steps, scaled from stage 2 (about the same cost per sample).
            need = 2 * training_estimate(self.rec.section("stage2").get("rows", []), self.plan.stage1_batch, 2, guess)
            self.section("stage1", self.stage1, need_s=min(need, 150), reserve_s=self.reserve_s, skip=no_model)
            self.section("stage2_full_logits", self.stage2_full, need_s=guess / 2, reserve_s=self.reserve_s, skip=no_model)
            self.section("fits", self.fits)
            self.section("caption_nf4", self.caption("nf4", self.reserve_s), need_s=guess / 2, reserve_s=self.reserve_s,
                         skip=no_model)
            self.release("weights_nf4")

            self.section("weights_bf16", self.weights("none"), skip=no_setup)
            no_model = None if self.cap is not None else "the bf16 model did not load"
            self.section("caption_bf16", self.caption("bf16", 0.0), need_s=guess / 2, skip=no_model)
            self.section("stage2_bf16", self.stage2_bf16, need_s=guess / 2, skip=no_model)
            self.section("caption_lora", self.caption_lora, need_s=guess / 2, skip=no_model)
            self.release("weights_bf16")
            self.section("fits", self.fits)
            self.section("caption_e2e", self.caption_e2e, need_s=guess, skip=no_setup)
        except KeyboardInterrupt as exc:
            print(f"interrupted ({exc}): writing what was measured", flush=True)
            self.rec.data["meta"]["interrupted"] = str(exc) or "KeyboardInterrupt"
        finally:
            self.finish()
        failed = [n for n, x in self.rec.data["sections"].items() if x.get("status") in ("error", "pending", "running")]
        return 1 if failed else 0

    def finish(self) -> None:
        """Summary, JSON, tables, the RESULTS.md row, and the headline last."""
        rec, args = self.rec, self.args
        for name in SECTIONS:
            rec.section(name)  # every section appears, "pending" if never reached
        rec.data["summary"] = summarize(rec)
        rec.data["meta"]["wall_s"] = round(self.budget.elapsed(), 1)
        rec.save()
        print_report(rec)
        row = results_row(rec)
        print(f"\nRESULTS.md row ({RESULTS_HEADING}):\n{row}")
        if args.results:
            append_results(Path(args.results), row)
        if not args.work_dir and not args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        print(f"\nresults: {args.out}" + (f"; row appended to {args.results}" if args.results else ""))
        print(headline(rec), flush=True)


def run(args) -> int:
    global OOM_ERRORS
    import torch

    OOM_ERRORS = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),)
    plan = make_plan(args)
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here; run it on a GPU machine, or use --tiny for the CPU code-path check",
              file=sys.stderr)
        return 2
    return Bench(args, plan).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="kvcap's tiny dimensions on the CPU: the code-path check")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds the run may take; later sections are skipped to fit (default 450 on GPU, 480 tiny)")
    parser.add_argument("--out", default=None,
                        help="JSON of every figure (default bench/gpu-results.json; --tiny: bench/gpu-results-tiny.json)")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"),
                        help="markdown file that gets a dated row under `## gpu` ('' = none)")
    parser.add_argument("--work-dir", default=None,
                        help="where the random backbones are written (kept, reused on a rerun); default a temp dir, removed")
    parser.add_argument("--keep", action="store_true", help="keep the default temp work dir")
    parser.add_argument("--rewrite", action="store_true", help="write the backbones again even if --work-dir has them")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced new tokens per caption (default 400; tiny 16)")
    parser.add_argument("--only", default=None, help=f"comma-separated sections to run: {', '.join(SECTIONS[1:])}")
    parser.add_argument("--e2e-auto-clips", type=int, default=None,
                        help="clips in each auto-batch row of caption_e2e (default 96; tiny 6)")
    parser.add_argument("--simulate-oom-from", type=int, default=None,
                        help="raise an OOM at stage-2 batch >= N (tests the sweep's OOM path; tiny default 4)")
    args = parser.parse_args()
    if args.only is not None:
        args.only = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = sorted(args.only - set(SECTIONS))
        if unknown:
            parser.error(f"--only: unknown section {', '.join(unknown)} (choose from {', '.join(SECTIONS[1:])})")
    if args.out is None:
        args.out = str(ROOT / "bench" / ("gpu-results-tiny.json" if args.tiny else "gpu-results.json"))
    if args.budget_s is None:
        args.budget_s = 480.0 if args.tiny else 450.0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
