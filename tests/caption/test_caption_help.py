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
    assert ("Caption every video under PATHS: folders (searched recursively), video files, zips (read in place), "
            "zip members (a.zip::b.mp4) and manifests (.jsonl: their clips' videos).") in text
