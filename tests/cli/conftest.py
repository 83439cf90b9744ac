"""Real unwritable places: a read-only tmpfs mount and a `chattr +i` folder (root ignores chmod)."""

from __future__ import annotations

import subprocess
import pytest

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
