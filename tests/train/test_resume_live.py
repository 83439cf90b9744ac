"""`kvcap train --resume` refuses a run whose trainer is still alive (kvcap.records.live_status)
and takes over one whose process was killed."""

from __future__ import annotations

import socket
import subprocess
import sys

from click.testing import CliRunner

from kvcap.cli import main
from kvcap.records import RunState, utc_now
from kvcap.trainer.rundir import RunDir
from train_helpers import train_args


def test_resume_refuses_a_run_that_is_still_training(tmp_path, synth_dataset):
    run = RunDir(tmp_path / "runs" / "r")
    run.create()
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.write_state(RunState(name="r", status="running", pid=trainer.pid, host=socket.gethostname(), stage=1,
                                 started=utc_now()).to_dict())
        args = ["train", "--stage", "1", "--run", "r", "--resume", *train_args(tmp_path, synth_dataset.manifest)]
        live = CliRunner().invoke(main, args)
        assert live.exit_code == 2 and f"still being trained by pid {trainer.pid}" in live.output
    finally:
        trainer.kill()
        trainer.wait()
    dead = CliRunner().invoke(main, args)  # its process is gone: the run is stale, resume goes on
    assert dead.exit_code == 2 and "still being trained" not in dead.output and "no checkpoint" in dead.output
