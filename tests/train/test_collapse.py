"""The mode-collapse alarm is logged loudly and, with train.early_stop_on_collapse, stops the run."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.data.manifest import ManifestItem, write_manifest
from train_helpers import rows, train_args


@pytest.mark.slow
def test_collapse_alarm_and_early_stop(tmp_path, synth_dataset, tiny_models):
    # Four val clips that are the same video (with four different references): greedy decoding
    # gives one caption for all of them, which is exactly what the alarm is for.
    same = synth_dataset.val[0].video
    val = [ManifestItem(id=f"same-{i}", video=same, caption=it.caption, split="val")
           for i, it in enumerate(synth_dataset.items[:4])]
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, list(synth_dataset.train) + val)
    args = train_args(tmp_path, manifest, "train.eval_max_clips=4", "train.early_stop_on_collapse=true",
                      "train.stage1.epochs=3", "generation.max_new_tokens=1")  # short captions, as in issue 22
    result = CliRunner().invoke(main, ["train", "--stage", "1", "--run", "c", *args])
    assert result.exit_code == 0, result.output
    assert "MODE COLLAPSE ALARM" in result.output and "are unique" in result.output
    assert "early stop" in result.output
    run = tmp_path / "runs" / "c"
    evals = rows(run, "eval")
    assert len(evals) == 1 and evals[0]["collapse"] is True and evals[0]["unique_ratio"] == 0.25
    # one caption four times has no diversity, however short it is (issue 22: 0.82 beside the alarm)
    assert evals[0]["diversity"] == pytest.approx(0.0, abs=1e-9)
    assert "diversity 0.000 is under half the references'" in result.output
    from kvcap.metrics.tokenize import get_tokenizer

    (caption,) = {r["prediction"] for r in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}
    assert len(get_tokenizer("kiwi").tokenize_many([caption])[0]) < 4  # too short to hold a 4-gram
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["step"] < state["total_steps"] and state["collapse"]
