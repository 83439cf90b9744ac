"""caption_folder with a scripted fake captioner: outputs, batching, resume, segments, shards.

The model is faked (tests/caption/fake_captioner.py) so these run in seconds; the clips and
decoders are real (copies of the shared video_zoo). End-to-end runs with the real tiny
checkpoint are in test_caption_cli.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import srt

from kvcap.caption import CaptionOptions, PipelineStats, caption_folder, merge_shards, resolve_inputs, segment_windows
from kvcap.caption.inputs import parse_formats, subtitle_names

from .conftest import BROKEN, GOOD, copy_clip
from .fake_captioner import FakeCaptioner


def read_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def run(*args, **kwargs):
    return list(caption_folder(*args, **kwargs))


def test_mixed_folder_gives_one_record_per_video_and_subtitles_for_ok_ones(mixed_folder, tmp_path):
    out = tmp_path / "out"
    results = run(mixed_folder, FakeCaptioner(), out, CaptionOptions(formats="all", batch_size=3, workers=2, checkpoint="ck"))
    keys = [r.video for r in results]
    assert keys == [v.key for v in resolve_inputs([mixed_folder])]  # input (sorted) order
    assert sorted(keys) == sorted(list(GOOD.values()) + list(BROKEN.values()))
    records = read_records(out / "captions.jsonl")
    assert [r["video"] for r in records] == keys
    for record in records:
        assert set(record) == {"video", "status", "caption", "segments", "duration", "fps", "frame_times",
                               "checkpoint", "elapsed_s", "error", "avg_logprob", "compression_ratio", "suspect"}
        stem = record["video"].rsplit(".", 1)[0]
        if record["video"] in GOOD.values():
            assert record["status"] == "ok" and record["error"] is None
            assert record["caption"].startswith("밝기") and record["checkpoint"] == "ck"
            assert len(record["frame_times"]) == 4 and record["duration"] > 0 and record["fps"] > 0
            # (the fake reports no token log-probabilities: avg_logprob stays None)
            assert record["segments"] == [{"start": 0.0, "end": record["duration"], "text": record["caption"],
                                           "avg_logprob": None, "compression_ratio": record["compression_ratio"]}]
            assert record["avg_logprob"] is None and 0 < record["compression_ratio"] < 2.4 and record["suspect"] is None
            subs = list(srt.parse((out / f"{stem}.srt").read_text(encoding="utf-8")))
            assert len(subs) == 1 and subs[0].content == record["caption"]
            assert (out / f"{stem}.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
        else:
            assert record["status"] == "error" and record["caption"] is None
            assert "\n" not in record["error"] and record["video"].split("/")[-1] in record["error"]
            assert not (out / f"{stem}.srt").exists()
    job = json.loads((out / "job.json").read_text())
    assert (job["status"], job["total"], job["done"], job["ok"], job["failed"]) == ("finished", 7, 7, 4, 3)


def test_batches_are_filled_in_order_and_do_not_change_captions(h264_folder, tmp_path, video_zoo):
    folder = h264_folder(5)
    copy_clip(video_zoo.clips["mpeg4"], folder / "clip02.mp4")  # a different clip in the middle
    one = FakeCaptioner()
    by_one = [r.caption for r in run(folder, one, None, CaptionOptions(batch_size=1))]
    two = FakeCaptioner()
    stats = PipelineStats()
    by_two = [r.caption for r in run(folder, two, None, CaptionOptions(batch_size=2, workers=0), stats=stats)]
    assert by_one == by_two and len(set(by_one)) == 2
    assert one.batches == [1] * 5 and two.batches == [2, 2, 1]
    assert stats.batches == 3 and stats.items == 5 and stats.model_s > 0 and stats.decode_s > 0


def test_rerun_skips_done_videos_and_redoes_missing_or_overwritten(mixed_folder, tmp_path):
    out = tmp_path / "out"
    run(mixed_folder, FakeCaptioner(), out, CaptionOptions(formats="srt"))
    again = FakeCaptioner()
    results = run(mixed_folder, again, out, CaptionOptions(formats="srt"))
    assert again.batches == []  # nothing was captioned twice...
    assert sum(r.skipped for r in results) == 4  # ...the ok ones were skipped, the broken retried
    assert [r.status for r in results if not r.skipped] == ["error"] * 3
    (out / "h264.srt").unlink()  # a missing subtitle means "not done"
    third = FakeCaptioner()
    redone = [r.video for r in run(mixed_folder, third, out, CaptionOptions(formats="srt")) if not r.skipped and r.ok]
    assert redone == ["h264.mp4"] and (out / "h264.srt").exists()
    fourth = FakeCaptioner()
    run(mixed_folder, fourth, out, CaptionOptions(formats="srt,vtt"))  # a newly asked format is missing too
    assert sum(fourth.batches) == 4
    fifth = FakeCaptioner()
    run(mixed_folder, fifth, out, CaptionOptions(formats="srt", overwrite=True))
    assert sum(fifth.batches) == 4
    records = read_records(out / "captions.jsonl")
    assert len(records) == len({r["video"] for r in records}) == 7  # compacted: one per video


def test_an_earlier_error_record_is_replaced_and_another_checkpoint_redoes(h264_folder, tmp_path):
    folder = h264_folder(2)
    out = tmp_path / "out"
    out.mkdir()
    stale = {"video": "clip00.mp4", "status": "error", "caption": None, "segments": [], "duration": None,
             "frame_times": [], "checkpoint": "ck", "elapsed_s": 0.0, "error": "boom"}
    (out / "captions.jsonl").write_text(json.dumps(stale) + "\n" + '{"video": "clip01.mp4", "sta', encoding="utf-8")
    run(folder, FakeCaptioner(), out, CaptionOptions(checkpoint="ck"))
    records = read_records(out / "captions.jsonl")
    assert [(r["video"], r["status"]) for r in records] == [("clip00.mp4", "ok"), ("clip01.mp4", "ok")]
    other = FakeCaptioner()
    run(folder, other, out, CaptionOptions(checkpoint="another"))
    assert sum(other.batches) == 2
    assert {r["checkpoint"] for r in read_records(out / "captions.jsonl")} == {"another"}


def test_several_roots_do_not_clash(tmp_path, video_zoo):
    a, b = tmp_path / "a", tmp_path / "b"
    copy_clip(video_zoo.clips["h264"], a / "x.mp4")
    copy_clip(video_zoo.clips["mpeg4"], b / "x.mp4")
    copy_clip(video_zoo.clips["mpeg4"], b / "x.avi")  # same stem, same folder: full names kept
    out = tmp_path / "out"
    results = run([a, b, a / "x.mp4"], FakeCaptioner(), out)
    assert [r.video for r in results] == ["a/x.mp4", "b/x.avi", "b/x.mp4"]
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.srt")} == {"a/x.srt", "b/x.avi.srt", "b/x.mp4.srt"}
    single = resolve_inputs([a / "x.mp4"])
    assert [v.key for v in single] == ["x.mp4"]


def test_subtitle_names_and_formats():
    assert subtitle_names(["a/x.mp4", "b/x.mp4", "c.d/e"]) == {"a/x.mp4": "a/x", "b/x.mp4": "b/x", "c.d/e": "c.d/e"}
    assert parse_formats("srt") == ("jsonl", "srt") and parse_formats("all") == ("jsonl", "srt", "vtt", "txt", "tsv")
    with pytest.raises(ValueError, match="unknown format 'ass'"):
        parse_formats("srt,ass")


def test_segment_windows():
    assert segment_windows(4.0, 1.5) == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.0)]
    assert segment_windows(3.1, 1.5) == [(0.0, 1.5), (1.5, 3.1)]  # a 0.1 s tail joins the last window
    assert segment_windows(1.0, 5.0) == [(0.0, 1.0)]


def test_segment_mode_captions_each_window(tmp_path, video_zoo):
    folder = tmp_path / "v"
    copy_clip(video_zoo.clips["h264"], folder / "long.mp4")  # 2 s, brightness rises with time
    out = tmp_path / "out"
    fake = FakeCaptioner()
    (result,) = run(folder, fake, out, CaptionOptions(segment=0.5, batch_size=3, formats="srt,vtt"))
    assert result.ok and len(result.segments) == 4
    assert [(s["start"], s["end"]) for s in result.segments] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    assert len({s["text"] for s in result.segments}) == 4  # each window saw its own frames
    assert fake.batches == [3, 1]
    for i, segment in enumerate(result.segments):  # frame times fall inside their window
        times = result.frame_times[4 * i: 4 * i + 4]
        assert all(segment["start"] <= t <= segment["end"] for t in times)
    cues = list(srt.parse((out / "long.srt").read_text(encoding="utf-8")))
    assert [c.content for c in cues] == [s["text"] for s in result.segments]
    assert cues[-1].end.total_seconds() == pytest.approx(2.0)


def test_stop_event_ends_after_the_current_batch_and_rerun_finishes(h264_folder, tmp_path):
    folder = h264_folder(6)
    out = tmp_path / "out"
    stop = threading.Event()
    seen = []
    for result in caption_folder(folder, FakeCaptioner(), out, CaptionOptions(batch_size=2), stop=stop):
        seen.append(result.video)
        stop.set()
    assert len(seen) == 2  # the whole first batch was written, nothing after it
    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "interrupted" and job["done"] == 2
    rest = run(folder, FakeCaptioner(), out, CaptionOptions(batch_size=2))
    assert sum(r.skipped for r in rest) == 2
    assert len(read_records(out / "captions.jsonl")) == 6
    assert json.loads((out / "job.json").read_text())["status"] == "finished"


def test_progress_callback_and_no_output_mode(h264_folder, tmp_path):
    folder = h264_folder(3)
    calls = []
    results = run(folder, FakeCaptioner(), None, progress=lambda job, r: calls.append((job.done, r and r.video)))
    assert calls == [(0, None), (1, "clip00.mp4"), (2, "clip01.mp4"), (3, "clip02.mp4")]
    assert all(r.ok for r in results)
    assert not any(tmp_path.rglob("*.jsonl"))


def test_three_shards_then_merge_equal_the_unsharded_run(mixed_folder, tmp_path):
    whole = tmp_path / "whole"
    run(mixed_folder, FakeCaptioner(), whole)
    parts = tmp_path / "parts"
    for index in range(3):
        run(mixed_folder, FakeCaptioner(), parts, CaptionOptions(shard=f"{index}/3"))
        assert (parts / f"captions.shard-{index}-of-3.jsonl").exists()
        assert (parts / f"job.shard-{index}-of-3.json").exists()
    merge_shards(parts)

    def by_video(path):
        return {r["video"]: (r["status"], r["caption"]) for r in read_records(path)}

    assert by_video(parts / "captions.jsonl") == by_video(whole / "captions.jsonl")
    assert sorted(p.relative_to(parts) for p in parts.rglob("*.srt")) == sorted(p.relative_to(whole) for p in whole.rglob("*.srt"))
