"""bench/startup.py: one round of its three timed commands, ending with the headline line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # four fresh processes that import torch and transformers
def test_startup_bench_times_caption_beside_torch_and_prints_the_headline(tmp_path):
    env = {**os.environ, "KVCAP_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), "--reps", "1", "--no-record"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    medians = {m.group(1): float(m.group(2)) for m in map(re.compile(r"median (\w+) +wall +([\d.]+) s").match, lines) if m}
    assert set(medians) == {"torch", "transformers", "caption"} and all(v > 0 for v in medians.values())
    headline = re.fullmatch(r"headline: startup_ratio = ([\d.]+) \(target <= 2\.0\)", lines[-1])
    # The medians are printed to 0.01 s, so the ratio computed from them is off by up to this much.
    ratio = medians["caption"] / medians["torch"]
    rounding = ratio * (0.005 / medians["torch"] + 0.005 / medians["caption"]) + 0.005
    assert headline and float(headline.group(1)) == pytest.approx(ratio, abs=rounding)
