"""README's "Use from Python" snippets, run exactly as written (extracted from README.md), in a
real Python process, on real clips and the bundled demo checkpoint copied to runs/x/best."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Use from Python"


def readme_snippets() -> list[str]:
    """The ```python blocks of README's "Use from Python" section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"\n{SECTION}\n" in text, f"README.md has no {SECTION!r} section"
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_section_loads_a_checkpoint_captions_a_folder_and_scores():
    code = "\n".join(readme_snippets())
    for call in ("Captioner.from_checkpoint(", "caption_folder(", "score_predictions("):
        assert call in code


@pytest.mark.slow
def test_readme_python_snippets_run_as_written(tmp_path):
    from kvcap.data.synth import synthesize
    from kvcap.model.checkpoint import DEMO_DIR

    items = synthesize(tmp_path / "data", 3, seed=77, size=64, seconds=2.0, fps=8, val_fraction=0.0)
    (tmp_path / "data" / "manifest.jsonl").rename(tmp_path / "data" / "val.jsonl")
    (tmp_path / "data" / "clips").rename(tmp_path / "videos")  # only ids are matched: the refs need no video
    shutil.copytree(DEMO_DIR, tmp_path / "runs" / "x" / "best")
    script = tmp_path / "snippets.py"
    script.write_text("\n".join(readme_snippets()), encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "KVCAP_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "mixer 8 frames a clip"
    captioned = dict(line.split(" ", 1) for line in lines[1:1 + len(items)])
    assert sorted(captioned) == sorted(f"{item.id}.mp4" for item in items) and all(captioned.values())
    meteor, diversity, collapse = lines[-1].split()
    assert 0 < float(meteor) <= 1 and 0 <= float(diversity) <= 1 and collapse in ("True", "False")
    records = [json.loads(line) for line in (tmp_path / "out" / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["status"] for r in records] == ["ok"] * len(items)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.srt")) == sorted(f"{item.id}.srt" for item in items)
