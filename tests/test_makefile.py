"""The Makefile's install rule, read with `make -n` (nothing is installed): TORCH_INDEX_URL and
what `make demo` says on a machine without an NVIDIA GPU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def dry_run(tmp_path: Path, *args: str, gpu: bool) -> list[str]:
    """`make -n ARGS` in a fresh copy (no .venv yet); PATH holds only a fake nvidia-smi, or nothing."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, work / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    proc = subprocess.run([MAKE, "-n", *args], cwd=work, env={"PATH": str(bin_dir)}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_without_a_gpu_make_demo_says_it_installs_the_cuda_build_and_how_to_get_the_cpu_one(tmp_path):
    lines = dry_run(tmp_path, "demo", gpu=False)
    said = "\n".join(line for line in lines if line.startswith("echo"))
    assert "no NVIDIA GPU found" in said and "CUDA build" in said
    assert f"make demo TORCH_INDEX_URL={CPU_INDEX}" in said
    installs = [line for line in lines if "pip install" in line and "torch" in line]
    assert installs == ['.venv/bin/python -m pip install --quiet "torch" -c requirements.lock -e ".[dev]"']
    assert lines[-1] == ".venv/bin/kvcap demo"


def test_torch_index_url_is_used_for_the_torch_install_only(tmp_path):
    lines = dry_run(tmp_path, "demo", f"TORCH_INDEX_URL={CPU_INDEX}", "TORCH_SPEC=torch==2.13.0", gpu=False)
    said = "\n".join(line for line in lines if line.startswith("echo"))
    assert f"installing torch from {CPU_INDEX}" in said
    installs = [line for line in lines if "pip install" in line and "torch" in line]
    assert installs == [
        f'.venv/bin/python -m pip install --quiet --no-deps "torch==2.13.0" --index-url "{CPU_INDEX}"',
        '.venv/bin/python -m pip install --quiet "torch==2.13.0" -c requirements.lock -e ".[dev]"',  # the rest from PyPI
    ]


def test_with_a_gpu_nothing_is_said_and_pypi_torch_is_installed(tmp_path):
    lines = dry_run(tmp_path, "demo", gpu=True)
    assert not any("NVIDIA" in line for line in lines)
    assert '.venv/bin/python -m pip install --quiet "torch" -c requirements.lock -e ".[dev]"' in lines


def test_a_pinned_torch_without_a_gpu_is_not_called_the_cuda_build(tmp_path):
    """CI pins the local CPU wheel (TORCH_SPEC=torch==2.13.0): the CUDA warning would be wrong there."""
    lines = dry_run(tmp_path, "test", "TORCH_SPEC=torch==2.13.0", gpu=False)
    said = " ".join(line for line in lines if "NVIDIA" in line)
    assert "installing torch==2.13.0 from pip's own indexes" in said and "CUDA build" not in said
    assert '.venv/bin/python -m pip install --quiet "torch==2.13.0" -c requirements.lock -e ".[dev]"' in lines
