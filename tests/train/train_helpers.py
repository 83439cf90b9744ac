"""Helpers for the trainer tests: examples/tiny.toml pointed at temp folders (imported as `train_helpers`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
TINY_TOML = REPO / "examples" / "tiny.toml"

# Quick evals: METEOR + diversity on two clips, short captions.
FAST_EVAL = [
    "score.metrics=[\"meteor\", \"diversity\"]",
    "train.eval_max_clips=2",
    "generation.max_new_tokens=6",
]


def train_args(tmp_path: Path, manifest: Path, *extra: str, fast_eval: bool = True) -> list[str]:
    """CLI args shared by the tests: tiny.toml, runs and cache under tmp_path (`fast_eval`: no SigLIP2)."""
    sets = [f"train.runs_dir={json.dumps(str(tmp_path / 'runs'))}", f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}",
            *(FAST_EVAL if fast_eval else FAST_EVAL[1:]), *extra]
    args = ["--config", str(TINY_TOML), "--data", str(manifest)]
    for item in sets:
        args += ["--set", item]
    return args


def rows(run_dir: Path, kind: str, stage: int | None = None) -> list[dict]:
    from kvcap.records import read_jsonl

    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == kind and (stage is None or r["stage"] == stage)]


def kvcap_cmd() -> list[str]:
    return [sys.executable, "-m", "kvcap.cli"]
