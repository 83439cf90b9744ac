"""`python -m kvcap`, and `accelerate launch` asked for N processes that started one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_helpers import SRC

from kvcap.launch import LaunchError, check_launch


def _run(*args: str, cwd=None, timeout: float = 180) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_python_dash_m_kvcap_is_the_cli():
    proc = _run("-m", "kvcap", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: kvcap ") and "caption" in proc.stdout and "train" in proc.stdout


def test_accelerate_cpu_launch_of_two_processes_says_it_started_one(tmp_path):
    """The launch a user tries first: with --cpu, accelerate starts a single process."""
    proc = _run("-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "-m", "kvcap", "train", "--stage", "1", "--run", "x", cwd=tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert "started 1" in errors[0] and "accelerate launch --multi_gpu --num_processes N" in errors[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("env", [
    {},  # not under accelerate launch
    {"ACCELERATE_USE_CPU": "True"},  # accelerate launch of one process
    {"ACCELERATE_USE_CPU": "False", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2"},  # --multi_gpu
    {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "h", "OMPI_COMM_WORLD_SIZE": "2"},  # mpirun
])
def test_launches_that_started_what_they_asked_for_pass(env):
    check_launch(env)


def test_the_single_process_launcher_with_a_master_address_is_refused():
    with pytest.raises(LaunchError, match="--multi_gpu"):
        check_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
