"""`kvcap caption --checkpoint X` decodes with X's saved generation settings unless the user sets
them (config file, --set or a flag): the checkpoint layer sits above the built-in defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.model import make_tiny_config

from kvcap.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def short_checkpoint(tiny_models, tmp_path_factory):
    """A tiny checkpoint whose own generation setting is 2 new tokens (the built-in default is 512).
    Seeded: its random projector (and so the 2 tokens it writes) must not depend on which tests
    ran before it and used the global RNG."""
    import torch

    from kvcap.model.captioner import Captioner

    torch.manual_seed(0)
    cfg = make_tiny_config({"generation.max_new_tokens": 2, "generation.repetition_penalty": 1.0})
    return Captioner.from_config(cfg, device="cpu").save(tmp_path_factory.mktemp("short") / "ckpt")


def _caption_tokens(out: Path, checkpoint: Path) -> int:
    from transformers import AutoTokenizer

    record = json.loads((out / "captions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["status"] == "ok", record
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint / "llm"))
    return len(tokenizer.encode(record["caption"], add_special_tokens=False))


def test_caption_uses_the_checkpoint_generation_settings(short_checkpoint, video_zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "kvcap.toml", tmp_path / "kvcap.toml")  # the repo's file, as a user has it
    clip = str(video_zoo.clips["h264"])
    runner = CliRunner()
    result = runner.invoke(main, ["caption", clip, "--checkpoint", str(short_checkpoint), "-o", "a", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "job.json").read_text())["generation"]["max_new_tokens"] == 2
    short = _caption_tokens(tmp_path / "a", short_checkpoint)
    assert 1 <= short <= 4  # 2 generated tokens (re-encoding the cleaned text may split them a little)
    # the user's setting beats the checkpoint's
    result = runner.invoke(main, ["caption", clip, "--checkpoint", str(short_checkpoint), "-o", "b", "--format", "jsonl",
                                  "--set", "generation.max_new_tokens=12"])
    assert result.exit_code == 0, result.output
    assert _caption_tokens(tmp_path / "b", short_checkpoint) > short


def test_caption_folder_without_settings_uses_the_checkpoint_ones(short_checkpoint, video_zoo, tmp_path):
    from kvcap.caption import CaptionOptions, caption_folder
    from kvcap.model.captioner import Captioner

    captioner = Captioner.from_checkpoint(short_checkpoint, device="cpu")
    [result] = list(caption_folder([video_zoo.clips["h264"]], captioner, tmp_path, CaptionOptions(formats=("jsonl",))))
    assert result.ok, result.error
    assert 1 <= _caption_tokens(tmp_path, short_checkpoint) <= 4  # 2 new tokens, not the built-in 512
