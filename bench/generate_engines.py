"""Greedy decoding speed of the two generation engines on CPU: transformers' generate vs kvcap's static loop.

    python bench/generate_engines.py [--tokens 32] [--reps 3] [--threads 1]

Builds bench/caption.py's 8-layer x 256 Qwen3 captioner and the test-size tiny one (2 x 64),
and times `Captioner.generate_ids` on random features at batch 1 and 8 with the token count
forced (min_new_tokens = max_new_tokens), engine=hf then engine=static, interleaved, best of
--reps. Prints new tokens/s per engine and the ratio, and checks both engines returned the same
tokens. (On a GPU the static loop also replays a CUDA graph per step; this CPU run measures
only the eager loop's overhead against generate's.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="kvcap-bench-engines-"))
    os.environ.setdefault("KVCAP_HOME", str(work / "home"))
    from caption import build_checkpoint, write_bench_qwen3  # bench/caption.py

    from kvcap.config import GenerationConfig
    from kvcap.model.captioner import Captioner

    models = {
        "qwen3 8x256": Captioner.from_checkpoint(build_checkpoint(work / "big", str(write_bench_qwen3(work / "q")), 8), device="cpu"),
        "tiny 2x64": Captioner.from_checkpoint(build_checkpoint(work / "small", "tiny:qwen3", 8), device="cpu"),
    }
    gen = GenerationConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens, repetition_penalty=1.05)
    print(f"{args.tokens} forced new tokens, repetition_penalty 1.05, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; new tokens/s, best of {args.reps}")
    print(f"{'model':<13}{'batch':>6}{'hf':>10}{'static':>10}{'static/hf':>11}  same tokens")
    for name, cap in models.items():
        for batch in (1, 8):
            g = torch.Generator().manual_seed(batch)
            features = torch.randn((batch, cap.frames, cap.vision.tokens_per_frame, cap.vision.hidden_size), generator=g)
            best: dict[str, float] = {}
            out: dict[str, list] = {}
            for engine in ("hf", "static"):  # warm-up
                cap.generate_ids(features, gen, engine=engine)
            for _ in range(args.reps):
                for engine in ("hf", "static"):
                    start = time.perf_counter()
                    out[engine] = cap.generate_ids(features, gen, engine=engine)
                    best[engine] = min(best.get(engine, float("inf")), time.perf_counter() - start)
            rate = {e: batch * args.tokens / s for e, s in best.items()}
            print(f"{name:<13}{batch:>6}{rate['hf']:>10.1f}{rate['static']:>10.1f}{rate['static'] / rate['hf']:>10.2f}x"
                  f"  {out['hf'] == out['static']}")


if __name__ == "__main__":
    main()
