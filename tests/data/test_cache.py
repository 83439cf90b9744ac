"""The feature cache: hits for the same clip, misses whenever anything in the key changes."""

from __future__ import annotations

import os

import pytest
import torch

from kvcap.data.cache import FeatureCache, cache_info


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"pretend video bytes " * 100)
    return path


def _feats(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 9, 16, generator=g)  # (T, N, D)


def test_roundtrip_and_info(tmp_path, video):
    cache = FeatureCache(tmp_path / "c", "clip|layer=-2|cls=drop|size=32")
    assert cache.get(video, 4) is None
    feats = _feats()
    cache.put(video, 4, feats, torch.tensor([0.5, 1.5, 2.5, 3.5]))
    got = cache.get(video, 4)
    assert got is not None
    assert torch.equal(got[0], feats) and got[1].tolist() == [0.5, 1.5, 2.5, 3.5]
    cache.flush_stats()
    info = cache_info(tmp_path / "c")
    assert (info.entries, info.hits, info.misses, info.writes) == (1, 1, 1, 1)
    assert info.bytes > feats.numel() * 4
    assert info.by_encoder == {"clip|layer=-2|cls=drop|size=32": 1}


def test_changed_video_bytes_is_a_miss(tmp_path, video):
    cache = FeatureCache(tmp_path / "c", "enc")
    cache.put(video, 4, _feats())
    stat = video.stat()
    # Same size, new bytes; even with the old mtime put back the inode/mtime memo must not
    # serve the old hash, so also test a fresh cache object (new process) after a rewrite.
    video.write_bytes(b"Pretend video bytes " * 100)
    assert video.stat().st_size == stat.st_size
    assert cache.get(video, 4) is None
    assert FeatureCache(tmp_path / "c", "enc").get(video, 4) is None
    # Restoring the original bytes finds the original entry again (content-addressed).
    video.write_bytes(b"pretend video bytes " * 100)
    assert FeatureCache(tmp_path / "c", "enc").get(video, 4) is not None


def test_changed_encoder_layer_or_frames_is_a_miss(tmp_path, video):
    FeatureCache(tmp_path / "c", "clip|layer=-2|cls=drop|size=32").put(video, 4, _feats())
    assert FeatureCache(tmp_path / "c", "clip|layer=-1|cls=drop|size=32").get(video, 4) is None
    assert FeatureCache(tmp_path / "c", "clip|layer=-2|cls=keep|size=32").get(video, 4) is None
    assert FeatureCache(tmp_path / "c", "clip|layer=-2|cls=drop|size=32").get(video, 8) is None
    assert FeatureCache(tmp_path / "c", "clip|layer=-2|cls=drop|size=32").get(video, 4) is not None


def test_same_bytes_elsewhere_hit_and_damaged_shard_is_a_miss(tmp_path, video):
    cache = FeatureCache(tmp_path / "c", "enc")
    shard = cache.put(video, 4, _feats())
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(video.read_bytes())
    assert cache.get(copy, 4) is not None  # keyed by content, not by name
    shard.write_bytes(b"torn")
    assert cache.get(video, 4) is None
    assert not shard.exists()  # removed so the next put rewrites it
    assert not [p for p in shard.parent.iterdir() if p.name.endswith(".tmp")]


def test_real_encoder_keys_differ_by_layer_and_size():
    vision = pytest.importorskip("kvcap.model.vision")
    tiny = pytest.importorskip("kvcap.model.tiny")
    model_dir = tiny.resolve_model_id("tiny:clip")
    a = vision.VisionEncoder(model_dir, layer=-2, cls="drop", device="cpu", dtype=torch.float32)
    b = vision.VisionEncoder(model_dir, layer=-1, cls="drop", device="cpu", dtype=torch.float32)
    c = vision.VisionEncoder(model_dir, layer=-2, cls="keep", device="cpu", dtype=torch.float32)
    assert len({a.key, b.key, c.key}) == 3
    assert os.path.basename(model_dir) in a.key or "clip" in a.key


def test_cache_build_and_info_cli(tmp_path, synth_dataset, tiny_models):
    """`kvcap cache build` fills the cache once (bad clips reported), `kvcap cache info` counts it."""
    import json
    import shutil
    from pathlib import Path

    from click.testing import CliRunner

    from kvcap.cli import main
    from kvcap.data.manifest import ManifestItem, read_manifest, write_manifest

    root = tmp_path / "data"
    shutil.copytree(synth_dataset.root, root)
    (root / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing else")
    items = read_manifest(root / "manifest.jsonl") + [
        ManifestItem(id="broken", video=root / "clips" / "broken.mp4", caption="깨짐", split="train"),
        ManifestItem(id="gone", video=root / "clips" / "gone.mp4", caption="없음", split="train"),
    ]
    write_manifest(root / "manifest.jsonl", items)
    tiny = Path(__file__).resolve().parents[2] / "examples" / "tiny.toml"
    common = ["--config", str(tiny), "--set", f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}"]
    runner = CliRunner()
    first = runner.invoke(main, ["cache", "build", str(root / "manifest.jsonl"), "--device", "cpu", *common])
    assert first.exit_code == 0, first.output
    n = len(synth_dataset.items)
    assert f"{n} encoded, 0 already cached, 2 bad" in first.output
    assert "skipped broken:" in first.output and "skipped gone:" in first.output and "gone.mp4" in first.output
    second = runner.invoke(main, ["cache", "build", str(root / "manifest.jsonl"), "--device", "cpu", "--split", "val", *common])
    assert second.exit_code == 0, second.output
    assert f"0 encoded, {len(synth_dataset.val)} already cached, 0 bad" in second.output
    info = runner.invoke(main, ["cache", "info", "--json", *common])
    assert info.exit_code == 0, info.output
    report = json.loads(info.output)
    assert report["entries"] == n and report["writes"] == n and report["bytes"] > 0
    assert len(report["by_encoder"]) == 1 and "layer=-2" in next(iter(report["by_encoder"]))
    text = runner.invoke(main, ["cache", "info", *common])
    assert f"entries:  {n}" in text.output
