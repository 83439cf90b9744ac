"""bench/demo_ablation.py: a few scenes through both stages, read back as attribute accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ablation_trains_both_stages_and_scores_held_out_scenes(tmp_path):
    env = {"KVCAP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_ablation.py"), "--name", "smoke", "--clips", "32", "--epochs", "1",
         "--crf", "20", "--workers", "1", "--device", "cpu", "--set", "train.stage1.epochs=1"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["name"] == "smoke" and result["clips"] == 32 and result["visual_tokens"] == 64  # demo.toml's mixer
    assert result["stage2_loss"] < result["stage1_loss"]  # stage 2 trains the LLM too
    for key in ("time_of_day", "scene", "weather", "motion"):
        assert 0.0 <= result[key] <= 1.0
