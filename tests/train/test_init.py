"""Stage 2 from `--init CHECKPOINT`: the checkpoint's projector is loaded, and a mismatch is one clear line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from train_helpers import rows, train_args


@pytest.mark.slow
def test_stage2_from_init_checkpoint(tmp_path, synth_dataset, tiny_checkpoint):
    runner = CliRunner()
    args = train_args(tmp_path, synth_dataset.manifest, "train.max_steps=1", "train.stage2.llm=\"lora\"")
    wrong = runner.invoke(main, ["train", "--stage", "2", "--run", "w", "--init", str(tiny_checkpoint),
                                 "--projector", "mlp2x_gelu", *args])
    assert wrong.exit_code == 2
    assert "holds a 'linear' projector but this run trains 'mlp2x_gelu'" in wrong.output
    missing = runner.invoke(main, ["train", "--stage", "2", "--run", "m", "--init", str(tmp_path / "nope"), *args])
    assert missing.exit_code == 2 and "no such checkpoint directory" in missing.output

    ok = runner.invoke(main, ["train", "--stage", "2", "--run", "ok", "--init", str(tiny_checkpoint), *args])
    assert ok.exit_code == 0, ok.output
    assert f"starting from the projector of {tiny_checkpoint}" in ok.output
    run = tmp_path / "runs" / "ok"
    assert [r["stage"] for r in rows(run, "train")] == [2]
    state = json.loads((run / "state.json").read_text())
    assert state["init"] == str(tiny_checkpoint) and state["stage"] == 2
    from kvcap.model.captioner import Captioner

    assert Captioner.from_checkpoint(run / "best", device="cpu", merge_adapters=False).spec.lora["r"] == 8  # tiny.toml's LoRA
    stage1 = runner.invoke(main, ["train", "--stage", "1", "--init", str(tiny_checkpoint), *args])
    assert stage1.exit_code == 2 and "--init is for --stage 2" in stage1.output
