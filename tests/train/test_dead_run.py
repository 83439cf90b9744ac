"""A run whose state.json says "running": dead after kill -9, or really alive, as `train` tells it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kvcap.cli import main
from kvcap.trainer.rundir import run_status

TINY_TOML = str(Path(__file__).resolve().parents[2] / "examples" / "tiny.toml")


def _run_dir(root: Path, pid: int) -> Path:
    run = root / "r"
    run.mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"name": "r", "status": "running", "pid": pid,
                                                "host": socket.gethostname(), "stage": 2, "step": 5}))
    return run


def _killed_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()  # SIGKILL, as `kill -9`
    proc.wait()
    return proc.pid


def test_a_killed_run_is_not_called_running(tmp_path, synth_dataset):
    run = _run_dir(tmp_path, _killed_pid())
    assert run_status(json.loads((run / "state.json").read_text())) == "stopped (its process is gone)"
    result = CliRunner().invoke(main, ["train", "--stage", "2", "--run", str(run), "--config", TINY_TOML,
                                       "--data", str(synth_dataset.manifest)])
    assert result.exit_code == 2, result.output
    assert "stopped (its process is gone)" in result.output and "running" not in result.output


def test_a_live_run_is_not_touched(tmp_path, synth_dataset):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = _run_dir(tmp_path, alive.pid)
        result = CliRunner().invoke(main, ["train", "--stage", "2", "--run", str(run), "--resume",
                                           "--config", TINY_TOML, "--data", str(synth_dataset.manifest)])
        assert result.exit_code == 2, result.output
        assert f"still being trained by pid {alive.pid}" in result.output
    finally:
        alive.kill()
        alive.wait()


def test_another_hosts_run_is_taken_at_its_word():
    assert run_status({"status": "running", "pid": 1, "host": "elsewhere-" + socket.gethostname()}) == "running"


def test_a_killed_but_unreaped_run_is_not_running(tmp_path):
    """kill -9 of a child nobody has waited for yet: the pid still exists, as a zombie."""
    import os
    import signal
    import time

    from kvcap.records import pid_alive

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.5)  # not reaped: os.kill(pid, 0) still succeeds
    try:
        os.kill(proc.pid, 0)
        state = {"status": "running", "pid": proc.pid, "host": socket.gethostname()}
        assert run_status(state) == "stopped (its process is gone)"
        assert not pid_alive(proc.pid)  # the TUI's check: "stale", not "running"
    finally:
        proc.wait()
