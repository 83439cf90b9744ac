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


def test_both_engines_take_the_config_s_subtitle_and_suspect_settings(tiny_checkpoint, tmp_path):
    """The local session and the Ray driver build their options from the same config reader, so
    [subtitle], the suspect thresholds and scene lengths reach a --cluster ray job too."""
    from kvcap.commands.caption_ray import ray_options

    cfg = _config(tmp_path, tiny_checkpoint, **{
        "subtitle.max_line_chars": 20, "caption.flag_logprob_below": -2.5, "caption.flag_compression_above": 3.0,
        "caption.segment": "scenes", "caption.scene_min_seconds": 1.5, "caption.batch_size": 2})
    local = CaptionSession.open(cfg).caption_options()
    ray = ray_options(cfg, None, "1/2", False)
    for options in (local, ray):
        assert options.subtitles.max_line_chars == 20
        assert (options.flag_logprob_below, options.flag_compression_above) == (-2.5, 3.0)
        assert options.segment.min_seconds == 1.5 and options.checkpoint == str(tiny_checkpoint.resolve())
    from kvcap.caption.shard import parse_shard

    assert ray.workers == 0 and ray.shard == parse_shard("1/2")  # decoding is the cluster's; the job's own shard
