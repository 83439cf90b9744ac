"""Checkpoints: self-describing, atomic, exact round trip, one-line refusals, no pickle."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from fixtures.model import random_features

from kvcap.config import GenerationConfig, LoraConfig, TrainConfig
from kvcap.model.captioner import Captioner
from kvcap.model.checkpoint import CheckpointError, resolve_checkpoint
from kvcap.model.trainable import is_peft_model, plan_for_stage

GEN = GenerationConfig(max_new_tokens=10)


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory):
    """A stage-2 tiny captioner trained a few steps (projector + LoRA moved off init), saved."""
    from fixtures.model import make_tiny_config, trained_stage2_captioner

    captioner, features = trained_stage2_captioner(make_tiny_config(), steps=3)
    path = captioner.save(tmp_path_factory.mktemp("ckpt") / "best")
    return captioner, path, features


def test_layout_and_description(trained):
    _, path, _ = trained
    names = {p.name for p in path.iterdir()}
    assert {"kvcap.json", "projector.safetensors", "adapter", "vision", "llm"} <= names
    assert not [n for n in names if n.startswith(".")]
    assert (path / "adapter" / "adapter_model.safetensors").is_file()
    spec = json.loads((path / "kvcap.json").read_text())
    assert spec["format"] == "kvcap-checkpoint" and spec["version"] == 1
    assert spec["vision"] | {"bundled": True} == spec["vision"]
    assert spec["vision"]["id"] == "tiny:clip" and spec["vision"]["layer"] == -2 and spec["vision"]["cls"] == "drop"
    assert spec["projector"]["name"] == "linear" and spec["projector"]["config"]["vision_dim"] == 64
    assert spec["llm"]["id"] == "tiny:qwen3" and spec["llm"]["quantization"] == "none"
    assert spec["lora"] == {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": LoraConfig().target_modules}
    assert spec["frames"] == 4 and spec["prompt"] and spec["generation"]["max_new_tokens"] == 16


def test_save_load_generate_gives_identical_tokens(trained):
    captioner, path, features = trained
    expected = captioner.generate_ids(features, GEN)
    # For captioning the adapter is folded into the (unquantized) weights: same tokens, plain model.
    merged = Captioner.from_checkpoint(path, device="cpu")
    assert not is_peft_model(merged.llm)
    assert merged.generate_ids(features, GEN) == expected
    assert merged.spec.lora is None and merged.spec.llm.merged_lora["r"] == 4
    # saved again, the merged model is self-contained: the whole LLM, no adapter
    resaved = Captioner.from_checkpoint(merged.save(path.parent / "merged"), device="cpu")
    assert not (path.parent / "merged" / "adapter").exists()
    assert resaved.generate_ids(features, GEN) == expected
    loaded = Captioner.from_checkpoint(path, device="cpu", merge_adapters=False)
    assert is_peft_model(loaded.llm)
    assert loaded.generate_ids(features, GEN) == expected
    for (name, a), (_, b) in zip(captioner.projector.state_dict().items(), loaded.projector.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.trainable_summary() == {"vision": 0, "projector": 0, "llm": 0}
    assert loaded.spec.lora["r"] == 4
    # kept separate, the adapter continues into another stage-2 run without re-wrapping
    loaded.apply_plan(plan_for_stage(TrainConfig().stage2))
    assert loaded.trainable_summary()["llm"] == captioner.trainable_summary()["llm"]


def test_quantized_llm_keeps_its_adapter_separate(trained):
    # Merging into 4-bit weights would requantize them (a different model): the adapter stays.
    _, path, features = trained
    loaded = Captioner.from_checkpoint(path, device="cpu", quantization="4bit")
    assert is_peft_model(loaded.llm)
    assert any(type(m).__name__ == "Linear4bit" for m in loaded.llm.modules())
    assert len(loaded.generate_ids(features, GEN)) == features.shape[0]


def test_checkpoint_is_self_contained(trained, tmp_path, monkeypatch):
    """The tiny backbones are bundled: the checkpoint loads with an empty KVCAP_HOME."""
    captioner, path, features = trained
    monkeypatch.setenv("KVCAP_HOME", str(tmp_path / "empty-home"))
    loaded = Captioner.from_checkpoint(path, device="cpu")
    assert loaded.generate_ids(features, GEN) == captioner.generate_ids(features, GEN)
    assert not (tmp_path / "empty-home").exists()
    assert loaded.vision.key == captioner.vision.key


def test_save_replaces_atomically(trained, tmp_path):
    captioner, _, _ = trained
    target = tmp_path / "ck"
    captioner.save(target)
    first = (target / "kvcap.json").read_text()
    (target / "stale.txt").write_text("old")
    captioner.save(target)
    assert not (target / "stale.txt").exists()
    assert json.loads((target / "kvcap.json").read_text())["projector"] == json.loads(first)["projector"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temp dirs left behind


def _copy(path, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(path, target)
    return target


def _one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        Captioner.from_checkpoint(path, device="cpu")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_projector_is_a_one_line_error(trained, tmp_path):
    path = _copy(trained[1], tmp_path)
    weights = path / "projector.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    message = _one_line_error(path, "truncated or corrupt projector weights")
    assert str(weights) in message


def test_missing_or_corrupt_description(trained, tmp_path):
    path = _copy(trained[1], tmp_path)
    (path / "kvcap.json").unlink()
    assert str(path) in _one_line_error(path, "not a kvcap checkpoint")
    (path / "kvcap.json").write_text("{not json")
    assert "kvcap.json" in _one_line_error(path, "corrupt checkpoint description")
    (path / "kvcap.json").write_text(json.dumps({"format": "kvcap-checkpoint", "version": 1}))
    _one_line_error(path, "missing section 'vision'")
    spec = json.loads((trained[1] / "kvcap.json").read_text())
    (path / "kvcap.json").write_text(json.dumps({**spec, "frames": "eight"}))
    _one_line_error(path, "'frames' must be a positive integer")
    (path / "kvcap.json").write_text(json.dumps({**spec, "version": 99}))
    _one_line_error(path, "newer than this kvcap reads")
    _one_line_error(tmp_path / "nowhere", "no such checkpoint directory")


def test_backbone_dims_must_match_the_projector(trained, tmp_path):
    path = _copy(trained[1], tmp_path)
    spec = json.loads((path / "kvcap.json").read_text())
    spec["projector"]["config"]["vision_dim"] = 1024
    (path / "kvcap.json").write_text(json.dumps(spec))
    message = _one_line_error(path, "backbone does not match the saved projector")
    assert "vision_dim is 64" in message and "1024" in message


def test_weights_that_do_not_fit_are_refused(trained, tmp_path):
    from safetensors.torch import save_file

    path = _copy(trained[1], tmp_path)
    save_file({"proj.weight": torch.zeros(3, 3)}, str(path / "projector.safetensors"))
    _one_line_error(path, "weights do not fit the saved projector")


def test_pickled_adapter_is_never_loaded(trained, tmp_path):
    path = _copy(trained[1], tmp_path)
    weights = path / "adapter" / "adapter_model.safetensors"
    weights.rename(path / "adapter" / "adapter_model.bin")
    _one_line_error(path, "only safetensors is loaded")


def test_demo_checkpoint_resolution(monkeypatch, tmp_path):
    import kvcap.model.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "DEMO_DIR", tmp_path / "demo" / "checkpoint")
    with pytest.raises(CheckpointError, match="demo checkpoint is not bundled"):
        resolve_checkpoint("demo")
    (tmp_path / "demo" / "checkpoint").mkdir(parents=True)
    (tmp_path / "demo" / "checkpoint" / "kvcap.json").write_text("{}")
    assert resolve_checkpoint("demo") == tmp_path / "demo" / "checkpoint"


def test_full_llm_is_saved_and_restored(tiny_models, tmp_path):
    from fixtures.model import make_tiny_config

    torch.manual_seed(0)
    captioner = Captioner.from_config(make_tiny_config(), device="cpu")
    captioner.apply_plan({"vision": "frozen", "projector": "full", "llm": "full"})
    features = random_features(captioner, 2)
    opt = torch.optim.AdamW([p for p in captioner.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        captioner.loss(features, ["바다", "산"]).backward()
        opt.step()
    path = captioner.save(tmp_path / "full")
    assert json.loads((path / "kvcap.json").read_text())["llm"]["trained_full"] is True
    loaded = Captioner.from_checkpoint(path, device="cpu")
    assert loaded.generate_ids(features, GEN) == captioner.generate_ids(features, GEN)


def test_tiny_checkpoint_fixture_loads(tiny_checkpoint):
    captioner = Captioner.from_checkpoint(tiny_checkpoint, device="cpu")
    assert captioner.frames == 4 and captioner.image_size == 64
    assert len(captioner.generate(random_features(captioner, 1))) == 1
