"""Issue 22: `kvcap caption --help` says what PATH may be (the real command, no terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_help_says_path_may_be_a_folder_file_zip_member_or_manifest():
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "kvcap.cli", "caption", "--help"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # content, not where the lines break
    assert ("Each PATH is a folder, a video file, a zip (its videos, read in place), a zip member (a.zip::b.mp4) "
            "or a manifest (.jsonl: its clips' videos).") in text
