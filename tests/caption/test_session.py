"""CaptionSession: the caption setup as one object, opened from a config without Click."""

from __future__ import annotations

import json

from kvcap.caption import CaptionSession, caption_folder
from kvcap.caption.autotune import CPU_BATCH
from kvcap.caption.results import PipelineStats
from kvcap.config import apply_overrides, load_config


def _config(tmp_path, checkpoint, **settings):
    (tmp_path / "kvcap.toml").write_text("# every setting at its default\n")
    cfg = load_config(str(tmp_path / "kvcap.toml"), [])
    values = {"caption.checkpoint": str(checkpoint), "caption.device": "cpu", **settings}
    return apply_overrides(cfg, values)


def test_a_session_opens_from_a_config_and_captions(tiny_checkpoint, h264_folder, tmp_path):
    cfg = _config(tmp_path, tiny_checkpoint, **{"caption.batch_size": "auto", "caption.workers": 1,
                                                "model.prompt": "한 문장으로 설명해 주세요."})
    session = CaptionSession.open(cfg)
    assert session.device == "cpu"
    assert session.batch_size == CPU_BATCH and "on cpu" in session.batch.reason  # auto off a GPU
    assert session.quantization.value == "none" and "as the checkpoint was trained" in session.quantization.reason
    assert session.cfg.caption.batch_size == CPU_BATCH and session.cfg.caption.workers == 1
    assert session.checkpoint_id == str(tiny_checkpoint.resolve())
    assert session.captioner.spec.prompt.endswith("한 문장으로 설명해 주세요.")  # the explicit prompt is applied
    line = session.describe()
    assert f"batch {CPU_BATCH} (on cpu: {CPU_BATCH})" in line and "\n" not in line

    options = session.caption_options(formats="jsonl", overwrite=True)
    assert (options.batch_size, options.checkpoint, options.overwrite) == (CPU_BATCH, session.checkpoint_id, True)
    assert options.job_extra["generation"]["prompt"] == session.captioner.spec.prompt
    stats, stats_file = PipelineStats(), tmp_path / "stats.json"
    results = caption_folder([h264_folder(2)], session.captioner, tmp_path / "out", options, stats=stats)
    assert [r.status for r in session.write_stats(results, stats, stats_file)] == ["ok", "ok"]
    written = json.loads(stats_file.read_text())
    assert written["batch_size"] == CPU_BATCH and written["pipeline"]["items"] == 2
