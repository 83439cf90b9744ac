"""`kvcap train --stage 1` then `--stage 2` with examples/tiny.toml on synthetic scenes, via the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kvcap.cli import main

from train_helpers import rows, train_args


@pytest.mark.slow
def test_stage1_then_stage2_end_to_end(tmp_path, synth_dataset, tiny_models):
    runner = CliRunner()
    args = train_args(tmp_path, synth_dataset.manifest, fast_eval=False)  # the full suite, SigLIP2 = tiny:siglip2
    run = tmp_path / "runs" / "tiny"

    first = runner.invoke(main, ["train", "--stage", "1", "--run", "tiny", *args])
    assert first.exit_code == 0, first.output
    assert "stage 1 finished" in first.output
    ev1 = rows(run, "eval", 1)
    assert len(ev1) == 2
    for r in ev1:
        assert all(r[k] is not None for k in ("meteor", "siglip", "siglip_cosine", "diversity", "ref_diversity"))
        assert isinstance(r["collapse"], bool) and isinstance(r["collapse_reasons"], list)
    assert ev1[-1]["loss"] < ev1[0]["loss"]  # the projector learns something even on a random LLM
    tr1 = rows(run, "train", 1)
    assert [r["step"] for r in tr1] == list(range(1, len(tr1) + 1))
    for key in ("epoch", "loss", "lr", "grad_norm", "samples_per_s", "mem_mb"):
        assert key in tr1[0]
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["stage"] == 1 and state["step"] == state["total_steps"]
    assert (run / "best" / "kvcap.json").is_file()

    # A second stage 1 into the same run is refused (it would overwrite it).
    again = runner.invoke(main, ["train", "--stage", "1", "--run", "tiny", *args])
    assert again.exit_code == 2 and "already holds a run" in again.output

    second = runner.invoke(main, ["train", "--stage", "2", "--run", "tiny", *args])
    assert second.exit_code == 0, second.output
    assert f"starting from the projector of {run / 'stage1' / 'best'}" in second.output
    assert (run / "stage1" / "best" / "kvcap.json").is_file()
    tr2 = rows(run, "train", 2)
    assert tr2[-1]["loss"] < tr2[0]["loss"]  # the tiny LLM trains in full: loss falls clearly
    assert len(rows(run, "eval", 2)) == 2
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert {s["stage"] for s in samples} == {1, 2} and all(s["prediction"] is not None and s["reference"] for s in samples)

    # The latest eval's captions score with `kvcap score` against the manifest.
    scored = runner.invoke(main, ["score", str(run / "predictions.jsonl"), "--refs", str(synth_dataset.manifest),
                                  "--metrics", "meteor", "--json"])
    assert scored.exit_code == 0, scored.output

    summary = json.loads((run / "summary.json").read_text())
    assert summary["stage"] == 2 and summary["projector"] == "linear" and summary["visual_tokens"] > 0
    assert set(summary["stage_times_s"]) == {"1", "2"} and summary["best_eval"]["meteor"] is not None

    # best/ is a kvcap checkpoint: it loads, and `kvcap caption` uses it.
    from kvcap.model.captioner import Captioner

    model = Captioner.from_checkpoint(run / "best", device="cpu")
    assert model.spec.llm.trained_full is True
    from huggingface_hub import ModelCard  # best/README.md: the trainer's model card, with the eval that chose it

    card = ModelCard.load(run / "best" / "README.md").data.to_dict()
    metrics = {m["type"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert metrics["meteor"] == round(summary["best_eval"]["meteor"], 4) and card["language"] == ["ko"]
    clips = [str(it.video) for it in synth_dataset.val[:2]]
    out = tmp_path / "captions"
    cap = runner.invoke(main, ["caption", *clips, "--checkpoint", str(run / "best"), "-o", str(out), "--format", "jsonl",
                               "--set", "generation.max_new_tokens=6"])
    assert cap.exit_code == 0, cap.output
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "ok"]

    table = runner.invoke(main, ["compare", str(run), "--json"])
    assert table.exit_code == 0, table.output
    row = json.loads(table.output)[0]
    assert row["projector"] == "linear" and row["meteor"] == summary["best_eval"]["meteor"]
