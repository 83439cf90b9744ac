"""Broken or missing videos are reported and skipped with a count; an empty train split is a clear error."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.data.manifest import ManifestItem, write_manifest
from train_helpers import rows, train_args


def _manifest_with_bad_clips(tmp_path, synth_dataset):
    root = tmp_path / "data"
    shutil.copytree(synth_dataset.root, root)
    (root / "clips" / "broken.mp4").write_text("this is not a video")
    from kvcap.data.manifest import read_manifest

    items = read_manifest(root / "manifest.jsonl")
    items += [
        ManifestItem(id="missing", video=root / "clips" / "missing.mp4", caption="없는 영상", split="train"),
        ManifestItem(id="broken", video=root / "clips" / "broken.mp4", caption="깨진 영상", split="train"),
    ]
    write_manifest(root / "manifest.jsonl", items)
    return root / "manifest.jsonl"


@pytest.mark.slow
@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "live"])
def test_bad_videos_are_skipped_and_counted(tmp_path, synth_dataset, tiny_models, use_cache):
    manifest = _manifest_with_bad_clips(tmp_path, synth_dataset)
    args = train_args(tmp_path, manifest, "train.max_steps=3", f"data.use_cache={str(use_cache).lower()}",
                      "data.num_workers=1", "train.eval_max_clips=1")
    result = CliRunner().invoke(main, ["train", "--stage", "1", "--run", "bad", *args])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "bad"
    assert [r["step"] for r in rows(run, "train")] == [1, 2, 3]  # one whole epoch: every clip was tried
    assert len(rows(run, "eval")) == 1
    if use_cache:
        assert "2 bad clip(s) skipped" in result.output
        assert "skipped missing:" in result.output and "missing.mp4" in result.output
        assert "skipped broken:" in result.output
        summary = json.loads((run / "summary.json").read_text())
        assert summary["bad_clips"] == 2 and summary["train_clips"] == len(synth_dataset.train)
    else:  # decoded every step: the two bad clips drop out of their batches
        assert "2 clip(s) failed to decode this epoch and were skipped" in result.output


def test_empty_train_split_is_one_clear_line(tmp_path, synth_dataset):
    manifest = tmp_path / "val_only.jsonl"
    items = [ManifestItem(id=it.id, video=it.video, caption=it.caption, split="val") for it in synth_dataset.items]
    write_manifest(manifest, items)
    result = CliRunner().invoke(main, ["train", "--stage", "1", "--run", "empty", *train_args(tmp_path, manifest)])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert message == f"Error: {manifest}: the training split is empty (no line has \"split\": \"train\")"


def test_missing_manifest_and_stage2_without_stage1(tmp_path, synth_dataset):
    runner = CliRunner()
    missing = runner.invoke(main, ["train", "--stage", "1", *train_args(tmp_path, tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl: manifest not found" in missing.output
    assert not (tmp_path / "runs").exists()  # checked before the run folder is made: nothing left behind
    lonely = runner.invoke(main, ["train", "--stage", "2", "--run", "fresh", *train_args(tmp_path, synth_dataset.manifest)])
    assert lonely.exit_code == 2 and "no stage 1 here" in lonely.output and "--init" in lonely.output
    nothing = runner.invoke(main, ["train", "--stage", "1", "--run", "never", "--resume", *train_args(tmp_path, synth_dataset.manifest)])
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.output
    assert not (tmp_path / "runs" / "never").exists()  # a run that was never started is not left as an empty folder


@pytest.mark.slow
def test_attempt_that_died_before_a_checkpoint_can_start_again(tmp_path, synth_dataset, tiny_models):
    from kvcap.trainer.rundir import RunDir

    run = RunDir(tmp_path / "runs" / "r")
    run.create()
    run.write_state({"name": "r", "status": "failed", "stage": 1, "step": 1, "error": "out of memory"})
    run.log_metrics({"kind": "train", "stage": 1, "step": 1, "loss": 99.0})
    run.close()
    result = CliRunner().invoke(main, ["train", "--stage", "1", "--run", "r",
                                       *train_args(tmp_path, synth_dataset.manifest, "train.max_steps=1")])
    assert result.exit_code == 0, result.output
    assert "left no checkpoint; starting it again" in result.output
    assert [r["loss"] != 99.0 for r in rows(run.path, "train")] == [True]  # the dead attempt's row is gone
