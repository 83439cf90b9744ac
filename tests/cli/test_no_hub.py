"""No hub (HF_HUB_OFFLINE=1, or a hub that cannot be reached) and a model id that is not a local
folder: one line naming the setting and the id and what to do, exit 2, before any folder is made."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from cli_helpers import kvcap, one_error_line

TINY_TOML = Path(__file__).resolve().parents[2] / "examples" / "tiny.toml"
CLIP = "openai/clip-vit-large-patch14-336"  # kvcap's default model.vision


def _no_hub(monkeypatch, tmp_path, offline: bool = True) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # an empty cache
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        return
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")


def test_train_with_the_default_hub_ids_offline_is_one_line_and_makes_no_run_folder(tmp_path, monkeypatch):
    _no_hub(monkeypatch, tmp_path)
    proc = kvcap("train", "--stage", "1", cwd=tmp_path)  # no kvcap.toml here: the defaults
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert f"model.vision = {CLIP}" in line and "HF_HUB_OFFLINE=1" in line
    assert "--set model.vision=/path/to/model" in line and f"hf download {CLIP}" in line
    assert not (tmp_path / "runs").exists()


def test_train_with_an_unreachable_hub_names_model_llm(tmp_path, monkeypatch, tiny_models):
    _no_hub(monkeypatch, tmp_path, offline=False)
    proc = kvcap("train", "--stage", "1", "--set", "model.vision=tiny:clip", "--set", "model.llm=Qwen/Qwen3-8B",
                 cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "model.llm = Qwen/Qwen3-8B" in line and "cannot be reached" in line
    assert not (tmp_path / "runs").exists()


def test_caption_with_a_checkpoint_naming_a_hub_llm_offline_is_one_line(tmp_path, monkeypatch, video_zoo):
    from kvcap.model.checkpoint import DEMO_DIR

    _no_hub(monkeypatch, tmp_path)
    ckpt = tmp_path / "ck"
    shutil.copytree(DEMO_DIR, ckpt, ignore=shutil.ignore_patterns("llm"))
    spec = json.loads((ckpt / "kvcap.json").read_text())
    spec["llm"].update(id="Qwen/Qwen3-8B", bundled=False, ref=None)
    spec["tokenizer_bundled"] = False
    (ckpt / "kvcap.json").write_text(json.dumps(spec))
    folder = tmp_path / "v"
    folder.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], folder / "a.mp4")
    proc = kvcap("caption", folder, "--checkpoint", ckpt, "-o", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "kvcap.json llm.id = Qwen/Qwen3-8B" in line and "hf download Qwen/Qwen3-8B" in line


def test_score_naming_siglip_with_a_hub_id_offline_is_one_line(tmp_path, monkeypatch):
    _no_hub(monkeypatch, tmp_path)
    record = {"id": "a", "video": "a.mp4", "caption": "바다 위로 해가 진다", "status": "ok"}
    (tmp_path / "pred.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "refs.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    proc = kvcap("score", "pred.jsonl", "--refs", "refs.jsonl", "--metrics", "meteor,siglip",
                 "--set", "score.siglip=google/siglip2-base-patch16-224", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "score.siglip = google/siglip2-base-patch16-224" in line and "--set score.siglip=" in line


@pytest.mark.slow  # trains up to the LLM load (~70 s on a busy 2-core machine)
def test_an_os_error_without_a_file_name_is_one_line(tmp_path, monkeypatch, synth_dataset, tiny_models):
    """transformers' OSError for a model folder without weights names no file: still one line, exit 2."""
    _no_hub(monkeypatch, tmp_path)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    shutil.copyfile(tiny_models["qwen3"] / "config.json", empty / "config.json")
    proc = kvcap("train", "--stage", "1", "--run", "x", "--config", TINY_TOML, "--data", synth_dataset.manifest,
                 "--set", f"model.llm={json.dumps(str(empty))}", "--set", f"data.cache_dir={json.dumps(str(tmp_path / 'c'))}",
                 cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert str(empty) in one_error_line(proc)
