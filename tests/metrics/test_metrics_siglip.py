"""SigLIP2 scoring with a tiny Siglip2Model written from a config (never a hub download)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kvcap.config import ScoreConfig
from kvcap.metrics import score_predictions
from kvcap.metrics.siglip import SiglipUnavailable, load_siglip, split_sentences
from kvcap.model.tiny.siglip2 import write_tiny_siglip2

from metrics_helpers import captions


def write_clip(path: Path, color: tuple[int, int, int], frames: int = 12, size: int = 64) -> Path:
    """A tiny H.264 clip with PyAV: a coloured square sliding over a gradient."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for k in range(frames):
            image = np.tile(np.linspace(0, 255, size, dtype=np.uint8)[None, :, None], (size, 1, 3))
            image[16:40, 4 + 2 * k: 28 + 2 * k] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_frames(path: Path, num_frames: int, size: int | None) -> np.ndarray:
    """Uniformly sampled RGB frames via PyAV (stand-in while kvcap.video lacks sample_frames)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = [int((k + 0.5) * len(frames) / num_frames) for k in range(num_frames)]
    return np.stack([frames[p] for p in picks])  # (T, H, W, 3)


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory):
    return write_tiny_siglip2(tmp_path_factory.mktemp("siglip2"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {f"clip{i}": write_clip(root / f"clip{i}.mp4", c)
            for i, c in enumerate([(255, 0, 0), (0, 200, 0), (0, 0, 255)])}


def _frame_loader():
    try:
        from kvcap.video import sample_frames  # noqa: F401 - the real path, once it exists
        return None
    except ImportError:
        return read_frames


def test_scores_are_finite_and_in_range(tiny_siglip, clips):
    scorer = load_siglip(str(tiny_siglip), frame_loader=_frame_loader(), frame_size=64)
    texts = captions(3, seed=5, sentences=(2, 3))
    predictions = dict(zip(clips, texts))
    references = {i: [t] for i, t in predictions.items()}
    cfg = ScoreConfig(metrics=["siglip"], siglip=str(tiny_siglip), siglip_frames=4)
    report = score_predictions(predictions, references, cfg, videos=clips, siglip_scorer=scorer)
    s = report.summary
    assert s["siglip_skipped"] == 0
    assert 0.0 < s["siglip"] < 1.0 and -1.0 <= s["siglip_cosine"] <= 1.0
    for row in report.per_clip:
        assert math.isfinite(row["siglip"]) and 0.0 < row["siglip"] < 1.0
        assert row["siglip_pieces"] == len(split_sentences(row["prediction"]))
    vector = scorer.encode_video(clips["clip0"], 4)  # (D,) averaged over frames, unit length
    assert vector.shape == (32,) and abs(float(vector.norm()) - 1.0) < 1e-5
    other = scorer.encode_video(clips["clip2"], 4)
    assert float((vector - other).abs().max()) > 0  # different clips, different embeddings


def test_clips_batched_together_embed_as_one_at_a_time(tiny_siglip, clips):
    scorer = load_siglip(str(tiny_siglip), frame_loader=_frame_loader(), frame_size=64, batch_size=5)
    together, failures = scorer.encode_videos(list(clips.items()), 4)  # 12 frames over 3 batches of <= 5 + rest
    assert failures == [] and list(together) == list(clips)
    for key, path in clips.items():
        alone = scorer.encode_video(path, 4)
        assert float((together[key] - alone).abs().max()) < 1e-5


def test_missing_video_is_counted_not_fatal(tiny_siglip, clips, tmp_path):
    scorer = load_siglip(str(tiny_siglip), frame_loader=_frame_loader(), frame_size=64)
    videos = {"clip0": clips["clip0"], "gone": tmp_path / "gone.mp4"}
    preds = {"clip0": "바다가 보인다.", "gone": "산이 보인다.", "novideo": "하늘."}
    cfg = ScoreConfig(metrics=["siglip"], siglip_frames=2)
    s = score_predictions(preds, {k: [v] for k, v in preds.items()}, cfg, videos=videos, siglip_scorer=scorer).summary
    assert s["siglip_skipped"] == 2 and s["siglip"] is not None


def test_long_caption_is_cut_into_text_windows(tiny_siglip):
    scorer = load_siglip(str(tiny_siglip))
    long_sentence = " ".join(["아주 넓고 푸른 바다 위로 하얀 갈매기들이"] * 30) + "."
    caption = "하늘이 맑다. " + long_sentence + " 파도가 친다."
    windows = scorer.text_windows(caption)
    assert len(windows) >= 4  # two short sentences + several windows of the long one
    pieces = [scorer.tokenizer.decode(w, skip_special_tokens=True) for w in windows]
    assert pieces[0] == "하늘이 맑다." and pieces[-1] == "파도가 친다."
    assert max(len(w) for w in windows) + scorer.tokenizer.num_special_tokens_to_add() <= 64
    long_ids = scorer.tokenizer(long_sentence, add_special_tokens=False)["input_ids"]
    assert [i for w in windows[1:-1] for i in w] == long_ids  # cut, nothing lost
    emb = scorer.encode_windows(windows)  # (P, D), each window embedded at the full 64 length
    assert tuple(emb.shape) == (len(windows), 32) and bool(emb.isfinite().all())


def test_split_sentences_on_korean_endings():
    assert split_sentences("하늘이 맑다. 바다가 보인다!\n산이 높다") == ["하늘이 맑다.", "바다가 보인다!", "산이 높다"]


def test_model_that_cannot_load_is_one_line(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SiglipUnavailable) as info:
        load_siglip(str(tmp_path / "broken"))
    message = str(info.value)
    assert "\n" not in message and "broken" in message and "--metrics meteor,diversity" in message


def test_tiny_id_resolves_through_the_model_registry(monkeypatch, tmp_path):
    tiny = pytest.importorskip("kvcap.model.tiny")
    if "siglip2" not in getattr(tiny, "TINY_WRITERS", {}):
        pytest.skip("kvcap.model.tiny does not register siglip2 yet")
    scorer = load_siglip("tiny:siglip2")
    assert scorer.text_window == 64 and Path(tiny.tiny_dir("siglip2")).is_dir()


def test_cli_scores_siglip_from_manifest_videos(tiny_siglip, clips, tmp_path):
    """The whole path: manifest `video` paths -> kvcap.video.sample_frames -> tiny SigLIP2."""
    import json

    from click.testing import CliRunner

    from kvcap.cli import main

    pytest.importorskip("kvcap.video.sampler")
    root = next(iter(clips.values())).parent
    texts = captions(3, seed=9, sentences=(1, 2))
    manifest = root / "val.jsonl"
    manifest.write_text("".join(json.dumps({"id": i, "video": p.name, "caption": t, "split": "val"}, ensure_ascii=False) + "\n"
                                for (i, p), t in zip(clips.items(), texts)), encoding="utf-8")
    preds = tmp_path / "captions.jsonl"
    preds.write_text("".join(json.dumps({"video": p.name, "status": "ok", "caption": t}, ensure_ascii=False) + "\n"
                             for p, t in zip(clips.values(), texts)), encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(preds), "--refs", str(manifest), "--siglip", str(tiny_siglip),
                                       "--set", "score.siglip_frames=3", "--tokenizer", "whitespace", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output[result.output.index("{"):])["summary"]
    assert s["n"] == 3 and s["siglip_skipped"] == 0, s.get("siglip_skipped_examples")
    assert 0 < s["siglip"] < 1 and -1 <= s["siglip_cosine"] <= 1 and s["meteor"] > 0.99
