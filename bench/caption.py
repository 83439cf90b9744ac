"""Caption pipeline throughput: does decoding hide behind the model, and what does batching buy?

    python bench/caption.py [--quick] [--no-record]

Synthesizes ~40 clips (kvcap.data.synth), builds a small random captioner on the tiny CLIP and
a Qwen3 wider and deeper than the test one (so that the model, not decoding, is the
bottleneck, as on a real GPU job), saves it as a checkpoint and loads it back, then times on
the same clips:

    model only         captioner.encode + generate over pre-decoded frames, batches of 8
    model only (hf)    the same with generation.engine = "hf" (transformers' generate, kvcap's
                       decoding before issue 17), interleaved with it: the before/after ratio
    decode only        kvcap.video.sample_frames over every clip, one thread
    kvcap b8           caption_folder, batch 8, 2 decode workers (decoding runs ahead)
    no prefetch b8     caption_folder, batch 8, workers=0 (decode, then generate, in turn)
    kvcap b1           caption_folder, batch 1, 2 decode workers

    pipeline efficiency = model only / kvcap b8      (1.0 = decoding fully hidden)
    batched speedup     = videos/s at b8 / at b1

and the same efficiency with the test-size model (decoding is then the bottleneck: the
pipeline should run at about decode-only time / workers, well under decode + model in turn).
The last line is the headline; a row goes to bench/RESULTS.md under `## caption`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402  (bench/benchlib.py: RESULTS.md rows, machine, commit)
sys.path.insert(0, str(ROOT / "src"))

BATCH = 8
WORKERS = 2
FRAMES = 8
HEADER = (
    "| date | machine | commit | clips | model | model-only s | decode-only s | kvcap b8 s | no-prefetch b8 s | "
    "kvcap b1 s | efficiency | batched speedup | GPU-like efficiency (no prefetch) | "
    "decode-bound: tiny model-only s / kvcap s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)

# The bench LLM: Qwen3 on the tiny tokenizer, sized so one generated token costs far more
# than one decoded frame on CPU (the test model is 2 layers x 64 wide).
BENCH_QWEN3 = {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 8,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}


def write_bench_qwen3(out_dir: Path) -> Path:
    """The tiny Qwen3's tokenizer + a bigger random Qwen3ForCausalLM (same loading path)."""
    import torch
    from transformers import AutoConfig, Qwen3Config, Qwen3ForCausalLM

    from kvcap.model.tiny import write_tiny_qwen3

    write_tiny_qwen3(out_dir)
    settings = AutoConfig.from_pretrained(out_dir).to_dict()
    settings.pop("layer_types", None)  # derived from the layer count
    config = Qwen3Config(**{**settings, **BENCH_QWEN3})
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_checkpoint(work: Path, llm: str, max_new_tokens: int) -> Path:
    from kvcap.config import Config, apply_overrides
    from kvcap.model.captioner import Captioner
    from kvcap.model.tiny import TINY_OVERRIDES

    cfg = apply_overrides(Config(), {
        **TINY_OVERRIDES, "model.llm": llm, "projector.name": "linear", "model.frames": FRAMES,
        "generation.max_new_tokens": max_new_tokens, "generation.repetition_penalty": 1.0,
    })
    return Captioner.from_config(cfg, device="cpu").save(work / "checkpoint")


def model_only(captioner, clips, gen) -> float:
    """encode + generate over frames decoded beforehand, in batches of BATCH."""
    import numpy as np
    import torch

    from kvcap.video import sample_frames

    frames = [sample_frames(c, num_frames=captioner.frames, size=captioner.image_size).frames for c in clips]
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(frames), BATCH):
            captioner.generate(captioner.encode(np.stack(frames[i:i + BATCH])), gen)
    return time.perf_counter() - start


def decode_only(captioner, clips) -> float:
    from kvcap.video import sample_frames

    start = time.perf_counter()
    for clip in clips:
        sample_frames(clip, num_frames=captioner.frames, size=captioner.image_size)
    return time.perf_counter() - start


def pipeline(captioner, folder: Path, gen, batch: int, workers: int) -> float:
    from kvcap.caption import CaptionOptions, caption_folder

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        options = CaptionOptions(formats="jsonl,srt", batch_size=batch, workers=workers, generation=gen)
        results = list(caption_folder(folder, captioner, out, options))
        elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return elapsed


class GpuLikeModel:
    """A model step that takes `seconds_per_clip` of wall time without using the CPU, like a
    GPU kernel the CPU waits on: what decoding must hide behind on a real GPU job."""

    def __init__(self, image_size: int, frames: int, seconds_per_clip: float):
        self.image_size, self.frames, self.seconds_per_clip = image_size, frames, seconds_per_clip

    def encode(self, frames):
        return frames

    def generate(self, features, gen):
        time.sleep(self.seconds_per_clip * len(features))
        return ["장면"] * len(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 clips instead of 40")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a GPU job the model leaves the CPU to the decoders; "
                             "one torch thread on a 2-core box keeps a core for them in the same way)")
    args = parser.parse_args()
    count = 16 if args.quick else 40
    max_new_tokens = 32

    import torch

    torch.set_num_threads(args.threads)

    from kvcap.config import GenerationConfig
    from kvcap.data.synth import synthesize
    from kvcap.model.captioner import Captioner

    work = Path(tempfile.mkdtemp(prefix="kvcap-bench-caption-"))
    os.environ.setdefault("KVCAP_HOME", str(work / "home"))
    print(f"synthesizing {count} clips (112 px, 4 s, 8 fps) and building the models in {work} ...", flush=True)
    synthesize(work / "data", count=count, seed=0)
    folder = work / "data" / "clips"
    clips = sorted(folder.glob("*.mp4"))
    llm_dir = write_bench_qwen3(work / "bench-qwen3")
    gen = GenerationConfig(max_new_tokens=max_new_tokens, repetition_penalty=1.0)
    hf_gen = GenerationConfig(max_new_tokens=max_new_tokens, repetition_penalty=1.0, engine="hf")
    big = Captioner.from_checkpoint(build_checkpoint(work / "big", str(llm_dir), max_new_tokens), device="cpu")
    small = Captioner.from_checkpoint(build_checkpoint(work / "small", "tiny:qwen3", 4), device="cpu")
    small_gen = GenerationConfig(max_new_tokens=4, repetition_penalty=1.0)

    model_only(big, clips[:BATCH], gen)  # warm-up: first calls allocate and pick kernels
    pipeline(small, folder, small_gen, BATCH, WORKERS)

    # These machines are shared and noisy: runs are interleaved and each figure is the best
    # (least disturbed) of `reps`, so a burst of someone else's work does not land on one side.
    reps = 2 if args.quick else 3
    runs: dict[str, list[float]] = {}

    def timed(name: str, fn) -> None:
        runs.setdefault(name, []).append(fn())

    for _ in range(reps):
        timed("model only", lambda: model_only(big, clips, gen))
        timed("model only hf", lambda: model_only(big, clips, hf_gen))
        timed("kvcap b8", lambda: pipeline(big, folder, gen, BATCH, WORKERS))
        timed("no prefetch b8", lambda: pipeline(big, folder, gen, BATCH, 0))
        timed("decode only", lambda: decode_only(big, clips))
        timed("tiny model only", lambda: model_only(small, clips, small_gen))
        timed("tiny kvcap b8", lambda: pipeline(small, folder, small_gen, BATCH, WORKERS))
        timed("tiny no prefetch b8", lambda: pipeline(small, folder, small_gen, BATCH, 0))
    # batch 1 is the slow one: once, on the first 16 clips (compared as videos/s)
    subset = work / "subset"
    subset.mkdir()
    for clip in clips[:16]:
        shutil.copyfile(clip, subset / clip.name)
    b1_s = pipeline(big, subset, gen, 1, WORKERS)
    best = {name: min(values) for name, values in runs.items()}
    gpu_like = GpuLikeModel(big.image_size, big.frames, best["model only"] / count)
    gpu_model_s = best["model only"]
    gpu_kvcap = min(pipeline(gpu_like, folder, gen, BATCH, WORKERS) for _ in range(2))
    gpu_serial = pipeline(gpu_like, folder, gen, BATCH, 0)
    best["kvcap b1"] = b1_s * count / len(clips[:16])  # scaled to the full clip count
    timings = {k: best[k] for k in ("model only", "decode only", "kvcap b8", "no prefetch b8", "kvcap b1")}
    small_model, small_decode = best["tiny model only"], best["decode only"]
    small_kvcap, small_serial = best["tiny kvcap b8"], best["tiny no prefetch b8"]

    cores = os.cpu_count() or 1
    print(f"\n{count} clips, {FRAMES} frames at {big.image_size} px, {max_new_tokens} new tokens, "
          f"LLM {BENCH_QWEN3['num_hidden_layers']}x{BENCH_QWEN3['hidden_size']}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {cores} cores")
    print(f"best of {reps} interleaved runs each")
    print(f"{'model-bound run':<22}{'seconds':>9}{'videos/s':>10}")
    for name, seconds in timings.items():
        print(f"{name:<22}{seconds:>9.2f}{count / seconds:>10.2f}")
    print(f"kvcap b1 ran on {len(clips[:16])} clips; its time above is scaled to {count}")
    efficiency = timings["model only"] / timings["kvcap b8"]
    speedup = timings["kvcap b1"] / timings["kvcap b8"]
    print(f"pipeline efficiency (model only / kvcap b8): {efficiency:.2f}  "
          f"(no prefetch: {timings['model only'] / timings['no prefetch b8']:.2f})")
    print(f"batched speedup (videos/s b8 / b1): {speedup:.2f}x")
    print(f"generation engine: model only {best['model only']:.2f} s (static loop) vs {best['model only hf']:.2f} s "
          f"(transformers' generate): {best['model only hf'] / best['model only']:.2f}x the speed")
    print(f"\nGPU-like run (same model time per clip, spent waiting instead of computing on the CPU): "
          f"efficiency {gpu_model_s / gpu_kvcap:.2f}, no prefetch {gpu_model_s / gpu_serial:.2f}")
    print(f"\ndecode-bound run (test-size model): model only {small_model:.2f} s, decode only {small_decode:.2f} s, "
          f"kvcap b8 {small_kvcap:.2f} s, no prefetch {small_serial:.2f} s")
    print(f"  kvcap / one-thread decode = {small_kvcap / small_decode:.2f}, no prefetch / one-thread decode = "
          f"{small_serial / small_decode:.2f} (with {WORKERS} free cores the first tends to ~1/{WORKERS}); "
          f"efficiency {small_model / small_kvcap:.2f} is low by design: the model is not the bottleneck")

    if not args.no_record:
        commit, machine = benchlib.git_commit(), benchlib.machine()
        model = f"qwen3 {BENCH_QWEN3['num_hidden_layers']}x{BENCH_QWEN3['hidden_size']}, {max_new_tokens} tok"
        t = timings
        row = (f"| {dt.datetime.now():%Y-%m-%d %H:%M} | {machine} | {commit} | {count}{' (quick)' if args.quick else ''} | "
               f"{model} | {t['model only']:.2f} | {t['decode only']:.2f} | {t['kvcap b8']:.2f} | "
               f"{t['no prefetch b8']:.2f} | {t['kvcap b1']:.2f} | {efficiency:.2f} | {speedup:.2f}x | "
               f"{gpu_model_s / gpu_kvcap:.2f} ({gpu_model_s / gpu_serial:.2f}) | "
               f"{small_model:.2f} / {small_kvcap:.2f} |")
        benchlib.append_row("## caption", HEADER, row)
    print(f"headline: pipeline_efficiency = {efficiency:.2f} (target >= 0.85)")


if __name__ == "__main__":
    main()
