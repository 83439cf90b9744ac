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


def train_args(tmp_path: Path, manifest: Path, *extra: str) -> list[str]:
    """CLI args shared by the tests: tiny.toml, runs and cache under tmp_path."""
    sets = [f"train.runs_dir={json.dumps(str(tmp_path / 'runs'))}", f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}",
            *FAST_EVAL, *extra]
    args = ["--config", str(TINY_TOML), "--data", str(manifest)]
    for item in sets:
        args += ["--set", item]
    return args


def tiny_cfg(tmp_path: Path, manifest: Path, *extra: str):
    from kvcap.config import load_config

    sets = [f"train.runs_dir={json.dumps(str(tmp_path / 'runs'))}", f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}",
            f"data.manifest={json.dumps(str(manifest))}", *FAST_EVAL, *extra]
    return load_config(TINY_TOML, sets)


def rows(run_dir: Path, kind: str, stage: int | None = None) -> list[dict]:
    from kvcap.fsutil import read_jsonl

    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == kind and (stage is None or r["stage"] == stage)]


def kvcap_cmd() -> list[str]:
    return [sys.executable, "-m", "kvcap.cli"]
