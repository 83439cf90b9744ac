"""Stage-1 epoch time with the feature cache warm vs. decoding + encoding every step.

    python bench/train.py [--quick] [--no-record]

Same tiny backbones (tiny:clip -> linear projector -> tiny:qwen3), same synthetic clips, same
seed and steps; eval off. The cached run has its cache filled before the clock starts (that is
what `kvcap cache build` or a previous run leaves behind); the uncached run (`data.use_cache =
false`) decodes and encodes its clips on every step, with the same background decode threads.
Times are the trainer's own step-loop time (`loop_s`: no model loading, eval or checkpoints).

The last line is the headline; a row goes to bench/RESULTS.md under `## train`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402  (bench/benchlib.py: RESULTS.md rows, machine, commit)
sys.path.insert(0, str(ROOT / "src"))

HEADER = ("| date | machine | commit | clips | frames x size | steps | cached epoch s | uncached epoch s | fill s | speedup |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
TARGET = 3.0


def run_stage1(cfg, run_dir: Path) -> dict:
    from kvcap.trainer.loop import train

    from kvcap.data.manifest import read_splits

    return train(cfg, read_splits(cfg.data.manifest), stage=1, run_path=run_dir, evaluate=False,
                 log=lambda message: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 clips instead of 48")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    count = 16 if args.quick else 48
    frames, size, seconds, fps = 8, 224, 6.0, 24

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    # One compute thread on both sides: on a shared 2-core box, OpenMP threads that spin while
    # another process holds the cores make step times swing 10x; one thread keeps the ratio honest.
    torch.set_num_threads(1)
    from kvcap.config import apply_overrides, load_config
    from kvcap.data.cache import FeatureCache, fill_cache
    from kvcap.data.manifest import read_manifest
    from kvcap.data.synth import synthesize
    from kvcap.model.vision import VisionEncoder

    with tempfile.TemporaryDirectory(prefix="kvcap-bench-train-") as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "data", count=count, seed=7, size=size, seconds=seconds, fps=fps, val_fraction=0.0)
        manifest = tmp / "data" / "manifest.jsonl"
        base = load_config(ROOT / "examples" / "tiny.toml")
        base = apply_overrides(base, {
            "data.manifest": str(manifest), "data.cache_dir": str(tmp / "cache"), "train.runs_dir": str(tmp / "runs"),
            "model.frames": frames, "train.stage1.epochs": 1.0, "train.save_every": 10_000, "data.num_workers": 2,
        })

        # Warm the cache outside the clock (as `kvcap cache build` would).
        m = base.model
        encoder = VisionEncoder(m.vision, m.vision_layer, m.vision_cls, "cpu", m.dtype)
        store = FeatureCache(base.data.cache_dir, encoder.key)
        t0 = time.perf_counter()
        fill = fill_cache(read_manifest(manifest), encoder.encode, store, frames=frames, size=encoder.image_size,
                          backend=base.video.backend, batch_size=8, workers=2)
        fill_s = time.perf_counter() - t0
        assert not fill.bad, fill.bad
        del encoder

        cached = run_stage1(apply_overrides(base, {"data.use_cache": True}), tmp / "runs" / "cached")
        uncached = run_stage1(apply_overrides(base, {"data.use_cache": False}), tmp / "runs" / "uncached")
        # Same steps, same data order: the losses must agree (the cache changes speed, not results).
        rows = {}
        for name in ("cached", "uncached"):
            rows[name] = [json.loads(line)["loss"] for line in (tmp / "runs" / name / "metrics.jsonl").read_text().splitlines()
                          if json.loads(line)["kind"] == "train"]
        drift = max(abs(a - b) for a, b in zip(rows["cached"], rows["uncached"]))

    t_cached, t_uncached = cached["loop_s"], uncached["loop_s"]
    speedup = t_uncached / t_cached
    print(f"clips: {count} ({size} px, {seconds:g} s at {fps} fps), {frames} frames, tiny:clip -> linear -> tiny:qwen3, "
          f"batch {base.train.batch_size}, {cached['steps']} steps (1 epoch)")
    print(f"cache fill (once, before):            {fill_s:7.2f} s")
    print(f"epoch, feature cache warm:            {t_cached:7.2f} s")
    print(f"epoch, decode + encode every step:    {t_uncached:7.2f} s")
    print(f"loss drift cached vs uncached:        {drift:.2e}")
    print(f"speedup: {speedup:.1f}x")
    if not args.no_record:
        benchlib.append_row(
            "## train", HEADER,
            f"| {benchlib.now()} | {benchlib.machine()} | {benchlib.git_commit()} | {count}{' (quick)' if args.quick else ''} | "
            f"{frames} x {size} | {cached['steps']} | {t_cached:.2f} | {t_uncached:.2f} | {fill_s:.2f} | {speedup:.1f}x |"
        )
    print(f"headline: cache_speedup = {speedup:.1f} (target >= {TARGET:g})")


if __name__ == "__main__":
    main()
