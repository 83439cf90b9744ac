"""bench/fleet.py: its steady-state arithmetic, and one --quick run end to end (issue 24)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def test_steady_state_leaves_out_start_up_but_counts_the_drain():
    from fleet import steady_state

    # worker 1 starts at 0, worker 2 only at 2 (its actor was slow to start); both take 1 s per
    # batch of 4 back to back; worker 2 runs out of work at 5, worker 1 at 6.
    batches = {(1, float(t), t + 1.0): 4 for t in range(6)}
    batches.update({(2, float(t), t + 1.0): 4 for t in range(2, 5)})
    got = steady_state(batches)
    assert got["span_s"] == pytest.approx(4.0)  # from 2 (both up) to 6 (the last batch's end)
    assert got["clips_s"] == pytest.approx(28 / 4)  # 4 + 3 batches of 4 clips in those 4 s
    assert got["busy"] == [0.75, 1.0]  # worker 2 idles through the last second


@pytest.mark.slow  # two local Ray clusters and the demo model, a few minutes on 2 shared cores
@pytest.mark.torch
def test_quick_run_compares_ray_with_local_and_ends_with_the_headline():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet.py"), "--quick", "--no-record"],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert any(re.search(r"ray vs local, 16 clips: .* \(same texts: True\)", line) for line in lines)
    rows = [line for line in lines if re.match(r"\| [12] \| [\d.]+ \| [\d.]+ \|", line)]
    assert len(rows) == 2  # N = 1 and 2 stand-in workers
    assert re.fullmatch(r"headline: ray/local wall = [\d.]+ \(target <= 1\.3\)", lines[-1])
