"""Issue 22: a collapsed model's short captions fail the diversity target and raise the alarm
together, in the real `kvcap score` process on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from metrics_helpers import captions

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _score(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kvcap.cli", "score", *map(str, args)], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_46_dot_captions_fail_diversity_and_raise_the_alarm(tmp_path):
    refs = _jsonl(tmp_path / "val.jsonl", [{"id": f"c{i}", "video": f"v/c{i}.mp4", "caption": t, "split": "val"}
                                           for i, t in enumerate(captions(46, seed=3, sentences=(2, 3)))])
    dots = [".", "..", "......."]
    preds = _jsonl(tmp_path / "captions.jsonl", [{"id": f"c{i}", "caption": dots[i % 3]} for i in range(46)])

    as_json = _score(preds, "--refs", refs, "--metrics", "meteor,diversity", "--json")
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)["summary"]
    assert summary["diversity"] < 0.05 < summary["ref_diversity"]

    table = _score(preds, "--refs", refs, "--metrics", "meteor,diversity", "--check")
    assert table.returncode == 1, table.stdout + table.stderr
    diversity_row = next(line for line in table.stdout.splitlines() if line.lstrip("│ ").startswith("Diversity"))
    assert "fail" in diversity_row and "pass" not in diversity_row
    assert "ALARM" in table.stdout
    assert "diversity 0.000 is under half the references'" in table.stdout + table.stderr
