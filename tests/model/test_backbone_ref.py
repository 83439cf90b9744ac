"""A checkpoint of a run on LOCAL backbone folders references them (path + fingerprint) instead
of copying them; moving or changing one is a one-line error naming it; `kvcap export --bundle`
makes a portable copy; every checkpoint carries a model card that parses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.model import make_tiny_config, trained_stage2_captioner

from kvcap.cli import main
from kvcap.config import GenerationConfig
from kvcap.model.captioner import Captioner
from kvcap.model.checkpoint import CheckpointError

GEN = GenerationConfig(max_new_tokens=10)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def local_run(tiny_models, tmp_path):
    """Backbones copied to plain local folders; a LoRA-trained captioner on them, saved."""
    backbones = tmp_path / "models"
    llm_dir = shutil.copytree(tiny_models["qwen3"], backbones / "qwen3-local")
    vision_dir = shutil.copytree(tiny_models["clip"], backbones / "clip-local")
    cfg = make_tiny_config({"model.llm": str(llm_dir), "model.vision": str(vision_dir)})
    captioner, features = trained_stage2_captioner(cfg, steps=2)
    path = captioner.save(tmp_path / "run" / "best", card={"metrics": {"meteor": 0.42, "diversity": 0.6}, "name": "local run"})
    return {"captioner": captioner, "path": path, "features": features, "llm": llm_dir, "vision": vision_dir,
            "tmp": tmp_path}


def _no_byte_copy(checkpoint: Path, backbone: Path) -> None:
    weights = {_digest(f): f for f in backbone.glob("*.safetensors")}
    assert weights
    for file in checkpoint.rglob("*"):
        if file.is_file() and file.suffix == ".safetensors" and _digest(file) in weights:
            original = weights[_digest(file)]
            assert os.stat(file).st_ino == os.stat(original).st_ino, f"{file} is a byte-copy of {original}"


def test_local_backbones_are_referenced_not_copied(local_run):
    path = local_run["path"]
    spec = json.loads((path / "kvcap.json").read_text())
    assert not (path / "llm").exists() and not (path / "vision").exists()
    for part, folder in (("llm", local_run["llm"]), ("vision", local_run["vision"])):
        assert spec[part]["bundled"] is False
        assert spec[part]["ref"]["path"] == str(folder.resolve())
        assert spec[part]["ref"]["fingerprint"]["weights"]
        _no_byte_copy(path, folder)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    backbone = sum(f.stat().st_size for f in local_run["llm"].rglob("*") if f.is_file())
    assert size < backbone  # the checkpoint is smaller than the backbone it was trained on


def test_referenced_checkpoint_captions_the_same_tokens(local_run):
    expected = local_run["captioner"].generate_ids(local_run["features"], GEN)
    loaded = Captioner.from_checkpoint(local_run["path"], device="cpu")
    assert loaded.generate_ids(local_run["features"], GEN) == expected


def test_moved_backbone_is_a_one_line_error_naming_it(local_run, tmp_path):
    moved = local_run["llm"].with_name("moved-away")
    local_run["llm"].rename(moved)
    with pytest.raises(CheckpointError) as info:
        Captioner.from_checkpoint(local_run["path"], device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert f"LLM backbone {local_run['llm'].resolve()} is missing" in message
    # the command says the same line and exits non-zero, without a traceback
    result = CliRunner().invoke(main, ["export", str(local_run["path"]), str(tmp_path / "copy")])
    assert result.exit_code == 2 and str(local_run["llm"].resolve()) in result.output
    assert "Traceback" not in result.output


def test_changed_backbone_is_refused(local_run):
    config = local_run["vision"] / "config.json"
    data = json.loads(config.read_text())
    data["layer_norm_eps"] = 1e-3
    config.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"vision backbone .*clip-local has changed: its config.json differs"):
        Captioner.from_checkpoint(local_run["path"], device="cpu")


def test_export_bundle_is_portable_and_links_instead_of_copying(local_run):
    out = local_run["tmp"] / "exported"
    result = CliRunner().invoke(main, ["export", str(local_run["path"]), str(out), "--bundle"])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "kvcap.json").read_text())
    assert spec["llm"]["bundled"] and spec["llm"]["ref"] is None and (out / "llm" / "config.json").is_file()
    for name in ("llm", "vision"):
        for file in (out / name).glob("*.safetensors"):
            assert file.stat().st_nlink >= 2  # same file system here: hard links, not a second copy
    expected = local_run["captioner"].generate_ids(local_run["features"], GEN)
    shutil.rmtree(local_run["llm"])
    shutil.rmtree(local_run["vision"])
    assert Captioner.from_checkpoint(out, device="cpu").generate_ids(local_run["features"], GEN) == expected
    assert "bundled in this folder" in (out / "README.md").read_text()


def test_checkpoint_model_card_parses_and_carries_metrics(local_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(local_run["path"] / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "kvcap" and data["language"] == ["ko"]
    assert "video-captioning" in data["tags"]
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"meteor": 0.42, "diversity": 0.6}
    for section in ("## Data", "## Projector", "## Frames", "## How to caption", "referenced at"):
        assert section in card.text


def test_saving_again_keeps_the_references(local_run, tmp_path, monkeypatch):
    """A checkpoint loaded (adapter kept separate, as stage-2 training does) and saved again from
    another working directory still references the same folders, and still holds no copy."""
    monkeypatch.chdir(tmp_path)
    loaded = Captioner.from_checkpoint(local_run["path"], device="cpu", merge_adapters=False)
    again = loaded.save(tmp_path / "again")
    spec = json.loads((again / "kvcap.json").read_text())
    assert spec["llm"]["ref"]["path"] == str(local_run["llm"].resolve())
    assert spec["vision"]["ref"]["path"] == str(local_run["vision"].resolve())
    assert not (again / "llm").exists()
    expected = local_run["captioner"].generate_ids(local_run["features"], GEN)
    assert Captioner.from_checkpoint(again, device="cpu").generate_ids(local_run["features"], GEN) == expected


def test_card_names_hub_backbones_as_base_models(local_run):
    from huggingface_hub import ModelCard

    from kvcap.model.card import build_card
    from kvcap.model.checkpoint import CheckpointSpec

    spec = CheckpointSpec.load(local_run["path"])
    spec.vision.id, spec.vision.ref = "openai/clip-vit-large-patch14-336", None
    spec.llm.id, spec.llm.ref = "Qwen/Qwen3-8B", None
    card = ModelCard(str(build_card(spec, {"metrics": {"meteor": 0.5}})))
    assert card.data.base_model == ["openai/clip-vit-large-patch14-336", "Qwen/Qwen3-8B"]
    assert "tiny-random-backbones" not in card.data.tags
    # the local run's own card names no local path as a base model
    assert ModelCard.load(local_run["path"] / "README.md").data.base_model is None
