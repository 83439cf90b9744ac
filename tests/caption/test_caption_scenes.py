"""`segment="scenes"` through the pipeline: one cue per shot, resume and shards as whole clips."""

from __future__ import annotations

import json

import srt

from fixtures.shots import FPS, write_shots
from kvcap.caption import CaptionOptions, caption_folder
from kvcap.caption.shard import merge_shards

from .fake_captioner import FakeCaptioner


def _folder(root):
    three, cuts = write_shots(root / "three.mp4", [("testsrc", 1.0), ("smptebars", 1.4), ("mandelbrot", 1.2)])
    write_shots(root / "sub/one.mp4", [("testsrc", 2.0)])
    write_shots(root / "sub/two.mp4", [("smptebars", 1.0), ("testsrc", 1.0)])
    return cuts


def _records(path):
    return {r["video"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_scenes_give_one_cue_per_shot_with_true_times(tmp_path):
    cuts = _folder(tmp_path / "videos")
    out = tmp_path / "out"
    captioner = FakeCaptioner()
    options = CaptionOptions(formats="all", segment="scenes", batch_size=2, workers=2)
    results = list(caption_folder(tmp_path / "videos", captioner, out, options))
    assert [r.status for r in results] == ["ok"] * 3
    records = _records(out / "captions.jsonl")
    three = records["three.mp4"]["segments"]
    assert len(three) == 3
    bounds = [0.0, *cuts, 3.6]
    for segment, start, end in zip(three, bounds, bounds[1:]):
        assert abs(segment["start"] - start) <= 1 / FPS and abs(segment["end"] - end) <= 1 / FPS
    assert len({s["text"] for s in three}) == 3  # each scene captioned from its own frames
    assert [(s["start"], s["end"]) for s in records["sub/one.mp4"]["segments"]] == [(0.0, 2.0)]
    assert len(records["sub/two.mp4"]["segments"]) == 2
    assert len(records["three.mp4"]["frame_times"]) == 3 * captioner.frames
    subs = list(srt.parse((out / "three.srt").read_text(encoding="utf-8")))
    assert [s.content for s in subs] == [s["text"] for s in three]
    assert (out / "three.txt").read_text(encoding="utf-8").splitlines() == [s["text"] for s in three]
    assert len((out / "three.tsv").read_text(encoding="utf-8").splitlines()) == 1 + 3


def test_scene_captioning_resumes_like_whole_clips(tmp_path, video_zoo):
    _folder(tmp_path / "videos")
    (tmp_path / "videos" / "bad.mp4").write_bytes(video_zoo.broken["truncated"].read_bytes())
    out = tmp_path / "out"
    first = list(caption_folder(tmp_path / "videos", FakeCaptioner(), out, CaptionOptions(segment="scenes", workers=0)))
    bad = next(r for r in first if r.video == "bad.mp4")
    assert bad.status == "error" and "bad.mp4" in bad.error and "\n" not in bad.error
    first = [r for r in first if r.ok]
    again = list(caption_folder(tmp_path / "videos", FakeCaptioner(), out, CaptionOptions(segment="scenes", workers=0)))
    assert not any(r.skipped for r in first)
    assert [r.video for r in again if not r.skipped] == ["bad.mp4"]  # only the failed one is tried again
    assert [r.segments for r in again if r.skipped] == [r.segments for r in first]
    (out / "sub/one.srt").unlink()  # a missing subtitle file makes that one video run again
    third = list(caption_folder(tmp_path / "videos", FakeCaptioner(), out, CaptionOptions(segment="scenes", workers=0)))
    assert [r.video for r in third if not r.skipped] == ["bad.mp4", "sub/one.mp4"]


def test_scene_captioning_shards_and_merges_to_the_unsharded_records(tmp_path):
    _folder(tmp_path / "videos")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    list(caption_folder(tmp_path / "videos", FakeCaptioner(), whole, CaptionOptions(segment="scenes")))
    for index in range(2):
        shard = CaptionOptions(segment="scenes", shard=f"{index}/2")
        list(caption_folder(tmp_path / "videos", FakeCaptioner(), parts, shard))
    merge_shards(parts, 2)
    strip = lambda records: {k: {**r, "elapsed_s": None} for k, r in records.items()}  # noqa: E731
    assert strip(_records(parts / "captions.jsonl")) == strip(_records(whole / "captions.jsonl"))
