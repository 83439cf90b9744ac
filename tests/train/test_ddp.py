"""`accelerate launch --multi_gpu --num_processes 2` trains DDP (gloo on CPU): ranks agree, rank 0 writes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from train_helpers import rows, train_args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_ranks_hold_identical_weights(tmp_path, synth_dataset, tiny_models):
    # LoRA with dropout: each rank draws different dropout masks and sees different clips, so
    # equal weights at the end mean the gradients really were all-reduced.
    args = train_args(tmp_path, synth_dataset.manifest, "train.stage1.llm=\"lora\"", "lora.dropout=0.1",
                      "train.batch_size=2", "train.max_steps=3", "data.num_workers=1")
    def launch() -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
               "-m", "kvcap", "train", "--stage", "1", "--run", "ddp", *args]  # README's CPU command
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    proc = launch()
    if proc.returncode != 0 and "address already in use" in (proc.stdout + proc.stderr).lower():
        proc = launch()  # another test grabbed the free port between our probe and the launch
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # Only rank 0 wrote: one row per step (no duplicates), one eval, one "finished" line.
    assert [r["step"] for r in rows(run, "train")] == [1, 2, 3]
    assert len(rows(run, "eval")) == 1
    assert proc.stdout.count("stage 1 finished") == 1
    assert sorted(p.name for p in run.iterdir()) == [
        "best", "checkpoints", "config.toml", "metrics.jsonl", "predictions.jsonl", "samples.jsonl", "state.json", "summary.json"]
    # Each step saw 2 ranks x 2 clips.
    state = json.loads((run / "state.json").read_text())
    assert state["world_size"] == 2 and state["status"] == "finished"
