"""`make demo` (= `kvcap demo` in the repo root, under ./kvcap.toml) decodes with the demo
checkpoint's own generation settings, not the built-in defaults; the demo checkpoint carries a
model card made from its held-out numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main

REPO = Path(__file__).resolve().parents[1]


def _demo_spec() -> dict:
    from kvcap.model.checkpoint import DEMO_DIR, SPEC_FILE

    if not (DEMO_DIR / SPEC_FILE).is_file():
        pytest.skip("the demo checkpoint is not built (scripts/build_demo_model.sh)")
    return json.loads((DEMO_DIR / SPEC_FILE).read_text(encoding="utf-8"))


def test_make_demo_runs_kvcap_demo_in_the_repo_root():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "kvcap demo" in recipe and "--config" not in recipe and "--set" not in recipe


def test_kvcap_demo_decodes_with_the_checkpoint_settings(tmp_path, monkeypatch):
    spec = _demo_spec()
    saved = spec["generation"]
    # the built-in defaults differ, so this test can fail
    from kvcap.config import GenerationConfig

    assert (saved["max_new_tokens"], saved["repetition_penalty"]) != (
        GenerationConfig().max_new_tokens, GenerationConfig().repetition_penalty)
    monkeypatch.chdir(REPO)  # what `make demo` does: ./kvcap.toml is loaded
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "out"), "--count", "2"])
    assert result.exit_code == 0, result.output
    assert (f"max_new_tokens {saved['max_new_tokens']} (checkpoint)" in result.output
            and f"repetition_penalty {saved['repetition_penalty']} (checkpoint)" in result.output), result.output
    # a user's setting still wins over the checkpoint's
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "out2"), "--count", "1",
                                       "--set", "generation.max_new_tokens=7"])
    assert result.exit_code == 0, result.output
    assert "max_new_tokens 7 (--set)" in result.output


def test_run_demo_uses_the_checkpoint_settings_under_the_repo_config(tmp_path):
    spec = _demo_spec()
    from kvcap.config import load_config
    from kvcap.demo.run import run_demo

    result = run_demo(load_config(REPO / "kvcap.toml"), tmp_path, count=1)
    assert {key: result.generation[key] for key in spec["generation"]} == spec["generation"]


def test_demo_checkpoint_card_parses_and_says_synthetic_only():
    _demo_spec()
    from huggingface_hub import ModelCard

    from kvcap.model.checkpoint import DEMO_DIR

    card = ModelCard.load(DEMO_DIR / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "kvcap" and data["language"] == ["ko"]
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics["meteor"] > 0.4
    # the shipped card's diversity is the README's figure (a share of the references'), not 0.0456
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "diversity" not in metrics and f"diversity {metrics['diversity_share']:.0%} of" in readme
    assert "synthetic scenes only" in card.text


def test_demo_card_comes_from_the_newest_results_row(tmp_path):
    from kvcap.demo.card import latest_demo_row, write_demo_card
    from kvcap.demo.record import COLUMNS, append_row

    results = tmp_path / "RESULTS.md"
    row = ["2026-11-27 10:47", "x86_64 2 cpu", "abc1234", "9500", "20.0", "1305", "1.5", "200", "0.8992", "0.3457",
           "0.5535", "0.0456 / 0.0428 (106%)", "99.0%", "98.0%", "98.5%", "83.5%", "86.0%", "all pass"]
    append_row(results, ["2026-11-26 09:00", *row[1:8], "0.5000", *row[9:]])
    results.write_text(results.read_text() + "\n### a subsection\n\n| x | y |\n|---|---|\n")
    append_row(results, row)
    text = results.read_text()
    assert text.index("0.8992") < text.index("### a subsection")  # rows stay in the ## demo table
    assert latest_demo_row(results)["METEOR"] == "0.8992" and len(COLUMNS) == len(row)
    checkpoint = tmp_path / "ckpt"
    import shutil

    from kvcap.model.checkpoint import DEMO_DIR

    _demo_spec()
    shutil.copytree(DEMO_DIR, checkpoint)
    write_demo_card(checkpoint, results)
    card = (checkpoint / "README.md").read_text()
    assert "value: 0.8992" in card and "abc1234" in card
    # diversity as the README shows it: a share of the references', beside its target (issue 22)
    assert "| Diversity, share of the references' | 106% |" in card
    assert "| Diversity, share of the references' | >= 90% | pass |" in card
    assert "value: 0.0456" not in card and "value: 1.06" in card
    # the facts are kept in kvcap.json, so `kvcap export` writes the same card
    out = tmp_path / "exported"
    assert CliRunner().invoke(main, ["export", str(checkpoint), str(out)]).exit_code == 0
    assert (out / "README.md").read_text() == card
