"""Real unwritable places: a read-only tmpfs mount and a `chattr +i` folder (root ignores chmod)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def readonly_dir(tmp_path):
    """An empty read-only file system (tmpfs mounted `ro`); skipped where mount is not allowed."""
    where = tmp_path / "ro"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.fixture
def immutable_dir(tmp_path):
    """A folder with the immutable attribute: nothing can be created in it, even by root."""
    where = tmp_path / "immutable"
    where.mkdir()
    done = subprocess.run(["chattr", "+i", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not supported here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["chattr", "-i", str(where)], check=False)


def kvcap(*args: str, cwd: Path | None = None, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `kvcap` in a subprocess (stdin /dev/null), capturing text output."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "kvcap.cli", *map(str, args)], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kwargs)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single `Error: ...` line of a failed command (and proof there is no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]
