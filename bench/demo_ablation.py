"""Which demo-recipe settings teach the tiny captioner camera motion (issue 8's ablation).

    python bench/demo_ablation.py --name mixer-p8 --clips 10000 --epochs 20 \\
        --set projector.name=mixer --set model.vision=tiny:clip8 [--crf 20] [--device cuda]

Trains examples/demo.toml's two stages (stage 1: projector, stage 2: projector + the whole tiny
LLM; the same Captioner, loss, AdamW, cosine warmup, clipping and batch size as `kvcap train`)
on `--clips` synthetic scenes of the recipe's seed, then captions 200 held-out scenes of the
recipe's held-out seed and prints one JSON line: attribute accuracy (time_of_day, scene,
weather, motion) read back from the generated captions, losses and times.

What it leaves out, to run many settings side by side in minutes on one GPU: no val split, no
per-epoch eval and no best-checkpoint choice (the last weights are scored), and frames come
straight from the renderer unless `--crf` sends them through H.264 and kvcap's frame sampler
as `kvcap data synth` + `kvcap train` do. Numbers are for comparing settings with each other;
the recipe's own held-out numbers come from scripts/build_demo_model.sh (bench/RESULTS.md,
`## demo`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TRAIN_SEED = 8  # scripts/build_demo_model.sh's training scenes
HELDOUT_SEED = 9008  # ... and its held-out scenes
HELDOUT = 200
SIZE = 64
RENDERED_FRAMES = 16  # 2 s at 8 fps, as the recipe synthesizes
ATTRIBUTES = ("time_of_day", "scene", "weather", "motion")


def _clip(args: tuple[int, int, int, str]):
    """(frames (T, S, S, 3) uint8, caption, attributes) of clip `index` under `seed`."""
    import numpy as np

    from kvcap.data.synth import clip_spec, compose_caption
    from kvcap.data.synth.renderer import render_frames
    from kvcap.data.synth.synthesize import encode_mp4
    from kvcap.video import sample_frames

    seed, index, crf, workdir = args
    spec, rng = clip_spec(seed, index)
    caption = compose_caption(spec, rng)
    rendered = render_frames(spec, SIZE, RENDERED_FRAMES)
    if crf < 0:
        # The frames kvcap's sampler picks from 16: the centres of 8 equal segments.
        frames = rendered[1::RENDERED_FRAMES // 8]
    else:
        path = Path(workdir) / f"{seed}-{index}.mp4"
        encode_mp4(path, rendered, fps=8, crf=crf)
        frames = sample_frames(path, 8, SIZE).frames
        path.unlink()
    return np.ascontiguousarray(frames), caption, spec.attributes()


def scenes(seed: int, count: int, crf: int, workers: int):
    """Frames (N, 8, S, S, 3), captions and attributes of clips 0..count-1 under `seed`."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="kvcap-ablation-") as workdir, Pool(workers) as pool:
        out = pool.map(_clip, [(seed, i, crf, workdir) for i in range(count)], chunksize=32)
    return np.stack([o[0] for o in out]), [o[1] for o in out], [o[2] for o in out]


def train_and_score(args: argparse.Namespace) -> dict:
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from kvcap.config import load_config
    from kvcap.data.synth.captions import parse_attributes
    from kvcap.model.captioner import Captioner
    from kvcap.model.trainable import plan_for_stage

    cfg = load_config(ROOT / "examples" / "demo.toml", args.set)
    cfg.train.stage2.epochs = args.epochs
    torch.manual_seed(cfg.train.seed)
    start = time.time()
    workers = args.workers or min(16, os.cpu_count() or 1)
    frames, captions, _ = scenes(TRAIN_SEED, args.clips, args.crf, workers)
    held_frames, _, held_attributes = scenes(HELDOUT_SEED, HELDOUT, args.crf, workers)
    captioner = Captioner.from_config(cfg, device=args.device)
    with torch.no_grad():  # frozen vision: encode once, as the feature cache does
        features = torch.cat([captioner.encode(frames[i:i + 500]) for i in range(0, len(frames), 500)])
        held_features = captioner.encode(held_frames)
    result: dict = {"name": args.name, "clips": args.clips, "epochs": args.epochs, "crf": args.crf,
                    "visual_tokens": captioner.projector.num_visual_tokens, "setup_s": round(time.time() - start, 1)}

    order = torch.Generator().manual_seed(cfg.train.seed)
    batch = cfg.train.batch_size
    for stage, stage_cfg in ((1, cfg.train.stage1), (2, cfg.train.stage2)):
        captioner.apply_plan(plan_for_stage(stage_cfg))
        captioner.train()
        params = captioner.trainable_parameters()
        optimizer = torch.optim.AdamW(params, lr=stage_cfg.lr, weight_decay=cfg.train.weight_decay)
        total = math.ceil(stage_cfg.epochs * len(captions) / batch)
        scheduler = get_cosine_schedule_with_warmup(optimizer, round(cfg.train.warmup_ratio * total), total)
        step = 0
        while step < total:
            perm = torch.randperm(len(captions), generator=order)
            for first in range(0, len(captions) - batch + 1, batch):
                idx = perm[first:first + batch]
                loss = captioner.loss(features[idx], [captions[j] for j in idx])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                if step >= total:
                    break
        result[f"stage{stage}_loss"] = round(loss.item(), 4)
    result["train_s"] = round(time.time() - start, 1)

    captioner.eval()
    with torch.no_grad():
        said = [c for i in range(0, HELDOUT, 100) for c in captioner.generate(held_features[i:i + 100], cfg.generation)]
    for key in ATTRIBUTES:
        right = sum(parse_attributes(caption).get(key) == truth[key] for caption, truth in zip(said, held_attributes))
        result[key] = right / HELDOUT
    result["total_s"] = round(time.time() - start, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="run", help="label for the JSON line")
    parser.add_argument("--clips", type=int, default=10000, help="training scenes (the recipe: 10000)")
    parser.add_argument("--epochs", type=float, default=20, help="stage-2 epochs (the recipe: 20)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override examples/demo.toml, e.g. projector.name=mlp2x_gelu or model.vision=tiny:clip")
    parser.add_argument("--crf", type=int, default=-1, help="send frames through H.264 at this CRF (the recipe's clips: 20); -1 = rendered frames")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--workers", type=int, default=0, help="rendering processes (0 = up to 16)")
    args = parser.parse_args()
    print(json.dumps(train_and_score(args)), flush=True)


if __name__ == "__main__":
    main()
