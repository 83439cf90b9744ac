"""A run killed with SIGKILL mid-epoch and resumed logs the same losses as an unbroken run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from train_helpers import kvcap_cmd, rows, train_args

# LoRA with dropout in stage 1 so that the RNG state matters; accumulation over 2 micro-batches
# so that the data position inside an accumulation group matters.
RESUME_SETTINGS = (
    "train.stage1.llm=\"lora\"", "lora.dropout=0.1", "train.batch_size=1", "train.grad_accum=2",
    "train.save_every=2", "train.keep_last=2", "train.log_every=1", "train.stage1.epochs=2",
)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_unbroken_run(tmp_path, synth_dataset, tiny_models):
    args = train_args(tmp_path, synth_dataset.manifest, *RESUME_SETTINGS)
    runner = CliRunner()
    unbroken = runner.invoke(main, ["train", "--stage", "1", "--run", "unbroken", *args])
    assert unbroken.exit_code == 0, unbroken.output
    reference = {r["step"]: r["loss"] for r in rows(tmp_path / "runs" / "unbroken", "train")}
    assert len(reference) == 10  # 9 clips, batch 1, 2 micro-batches a step -> 5 steps an epoch

    run = tmp_path / "runs" / "killed"
    log = open(tmp_path / "killed.log", "wb")
    proc = subprocess.Popen([*kvcap_cmd(), "train", "--stage", "1", "--run", "killed", *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not (run / "checkpoints" / "step-2").is_dir():
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "running"  # it never got to say anything else
    killed_steps = [r["step"] for r in rows(run, "train")]
    assert max(killed_steps) < 10, "the run finished before it could be killed"

    resumed = runner.invoke(main, ["train", "--stage", "1", "--run", "killed", "--resume", *args])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from" in resumed.output
    after = rows(run, "train")
    assert [r["step"] for r in after] == list(range(1, 11))  # rows past the checkpoint were replaced, not doubled
    for r in after:
        assert abs(r["loss"] - reference[r["step"]]) <= 1e-5, (r["step"], r["loss"], reference[r["step"]])
    evals = rows(run, "eval")
    assert [e["step"] for e in evals] == [5, 10]
    assert json.loads((run / "state.json").read_text())["status"] == "finished"
    assert len(list((run / "checkpoints").iterdir())) == 2  # keep_last

    # Resuming a finished run says so.
    done = runner.invoke(main, ["train", "--stage", "1", "--run", "killed", "--resume", *args])
    assert done.exit_code == 2 and "already finished" in done.output
