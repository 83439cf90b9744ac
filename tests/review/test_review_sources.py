"""The review page finds every video again from job.json's inputs, and its strips are the frames
the caption job sampled: one folder, segments, zip archives and members, several roots, shards."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from fixtures.video import CLIP_SECONDS, gray_for_time
from review.conftest import assert_tiles_match, caption_job, strip_tiles

from kvcap.records import read_jsonl
from kvcap.review import ReviewError, write_review
from kvcap.review.sources import load_job
from kvcap.review.strips import TILE, encode_strip, plan_strip, sample_tiles
from kvcap.video import sample_frames


def strips_by_key(out) -> dict[str, str]:
    """{video key: strip file} as the page links them."""
    import re

    html = (out / "review.html").read_text(encoding="utf-8")
    rows = re.findall(r'<article class="v" data-k="([^"]*)".*?</article>', html, re.S)
    found = {}
    for key, body in zip(rows, re.findall(r'<article class="v".*?</article>', html, re.S)):
        match = re.search(r'<img class="strip"[^>]* src="([^"]+)"', body)
        found[key] = match.group(1) if match else None
    return found


def check_strip_is_the_sampled_frames(out, item) -> np.ndarray:
    """The strip of `item` equals the sampler's frames at the record's windows, and each tile
    is the frame shown at the record's frame time (the zoo codes time as brightness)."""
    record = item.record
    plan = plan_strip(item.key, item.path, record.segments, record.frame_times, record.duration)
    tiles = strip_tiles(out / strips_by_key(out)[item.key], TILE)
    frames = []
    for window in plan.windows:
        start, end = window if window is not None else (None, None)
        frames.append(sample_frames(item.path, plan.frames_per_window, size=TILE, start=start, end=end).frames)
    assert_tiles_match(tiles, np.concatenate(frames))
    # Independent of the sampler: the centre of each tile has the gray of its recorded time.
    grays = tiles[:, TILE // 2 - 4:TILE // 2 + 4, TILE // 2 - 4:TILE // 2 + 4].mean(axis=(1, 2, 3))
    expected = [gray_for_time(t, CLIP_SECONDS) for t in record.frame_times]
    assert np.allclose(grays, expected, atol=6), (grays, expected)
    return tiles


def test_folder_each_ok_video_has_its_frames_and_errors_their_reason(zoo_folder, tmp_path):
    videos = zoo_folder({"h264.mp4": "h264", "sub/vp9.webm": "vp9", "한국어/바다 01.mp4": "korean",
                         "broken/truncated.mp4": "truncated"})
    out = tmp_path / "out"
    caption_job([videos], out)
    report = write_review(out, workers=2)
    job = load_job(out)
    assert report.videos == 4 and report.strips == 3 and not report.frame_errors
    html = (out / "review.html").read_text(encoding="utf-8")
    for item in job.items:
        if item.record.ok:
            check_strip_is_the_sampled_frames(out, item)
            assert item.record.caption in html
        else:
            assert strips_by_key(out)[item.key] is None
            assert f'<p class="err">{item.record.error}</p>' in html  # the reason, on its row
    assert 'loading="lazy"' in html and "<script src" not in html and "<link" not in html  # self-contained


def test_segments_give_one_run_of_tiles_per_window(zoo_folder, tmp_path):
    videos = zoo_folder({"clip.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out, segment=1.0)
    write_review(out, workers=1)
    (item,) = load_job(out).items
    assert len(item.record.segments) == 2
    tiles = check_strip_is_the_sampled_frames(out, item)
    assert len(tiles) == len(item.record.frame_times) == 8


def test_zip_archive_and_zip_member_inputs(video_zoo, tmp_path):
    archive = tmp_path / "parts" / "TS_01.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(video_zoo.clips["h264"], "clips/a.mp4")
        zf.write(video_zoo.clips["vfr"], "clips/b.mp4")
    for inputs, keys in [([archive], {"TS_01.zip/clips/a.mp4", "TS_01.zip/clips/b.mp4"}),
                         ([f"{archive}::clips/b.mp4"], {"TS_01.zip/clips/b.mp4"})]:
        out = tmp_path / f"out{len(keys)}"
        caption_job(inputs, out)
        report = write_review(out)
        items = load_job(out).items
        assert {i.key for i in items} == keys and report.strips == len(keys)
        for item in items:
            assert "::" in str(item.path)
            check_strip_is_the_sampled_frames(out, item)


def test_several_roots_with_the_same_file_names(zoo_folder, tmp_path):
    first = zoo_folder({"x.mp4": "h264"}, name="a")
    second = zoo_folder({"x.mp4": "vfr"}, name="b")
    out = tmp_path / "out"
    caption_job([first, second], out)
    write_review(out)
    items = {i.key: i for i in load_job(out).items}
    assert set(items) == {"a/x.mp4", "b/x.mp4"}
    assert items["a/x.mp4"].path == first / "x.mp4" and items["b/x.mp4"].path == second / "x.mp4"
    tiles = [check_strip_is_the_sampled_frames(out, items[k]) for k in ("a/x.mp4", "b/x.mp4")]
    assert not np.allclose(tiles[0], tiles[1], atol=6)  # two different files, not one shown twice


def test_shards_without_a_merge(zoo_folder, tmp_path):
    videos = zoo_folder({f"c{i}.mp4": "h264" for i in range(3)} | {"v.mp4": "vfr"})
    out = tmp_path / "out"
    for index in range(2):
        caption_job([videos], out, shard=f"{index}/2")
    assert not (out / "job.json").exists() and not (out / "captions.jsonl").exists()
    report = write_review(out)
    items = load_job(out).items
    assert sorted(i.key for i in items) == ["c0.mp4", "c1.mp4", "c2.mp4", "v.mp4"]
    assert report.strips == 4
    for item in items:
        check_strip_is_the_sampled_frames(out, item)


def test_job_inputs_are_absolute_and_the_page_builds_from_another_folder(zoo_folder, tmp_path, monkeypatch):
    zoo_folder({"clip.mp4": "h264"})
    monkeypatch.chdir(tmp_path)
    caption_job(["videos"], tmp_path / "out")  # a relative input, as typed
    assert json.loads((tmp_path / "out" / "job.json").read_text())["inputs"] == [str(tmp_path / "videos")]
    monkeypatch.chdir("/")
    assert write_review(tmp_path / "out").strips == 1


def test_a_moved_video_is_named_on_its_row_and_the_page_still_written(zoo_folder, tmp_path):
    videos = zoo_folder({"stay.mp4": "h264", "gone.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out)
    (videos / "gone.mp4").unlink()
    report = write_review(out)
    assert report.videos == 2 and report.strips == 1
    html = (out / "review.html").read_text(encoding="utf-8")
    assert "frames not shown: gone.mp4 is no longer under the job&#x27;s inputs" in html


def test_strips_are_reused_and_stale_ones_pruned(zoo_folder, tmp_path, video_zoo):
    videos = zoo_folder({"a.mp4": "h264", "b.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out)
    first = write_review(out)
    assert (first.strips, first.reused, first.pruned) == (2, 0, 0)
    again = write_review(out)
    assert (again.strips, again.reused, again.pruned) == (2, 2, 0)
    # b.mp4 replaced by another clip and captioned again: its strip is new, the old one goes.
    (videos / "b.mp4").write_bytes(video_zoo.clips["vfr"].read_bytes())
    caption_job([videos], out, overwrite=True)
    third = write_review(out)
    assert (third.strips, third.reused, third.pruned) == (2, 1, 1)
    assert len(list((out / "review").glob("*.jpg"))) == 2


def test_confidence_figures_are_shown_when_records_carry_them(zoo_folder, tmp_path):
    videos = zoo_folder({"a.mp4": "h264", "b.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out)
    ledger = out / "captions.jsonl"
    records = read_jsonl(ledger)
    records[0] |= {"avg_logprob": -0.25, "compression_ratio": 1.5, "suspect": None}
    records[1] |= {"avg_logprob": -2.75, "compression_ratio": 3.1, "suspect": "compression ratio 3.10 > 2.4"}
    records[1]["segments"][0]["avg_logprob"] = -2.5
    ledger.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    write_review(out)
    html = (out / "review.html").read_text(encoding="utf-8")
    assert 'data-lp="-0.25" data-cr="1.5" data-e="0" data-s="0"' in html
    assert 'data-lp="-2.75" data-cr="3.1" data-e="0" data-s="1"' in html
    assert "suspect: compression ratio 3.10 &gt; 2.4" in html and '<span class="lp">-2.50</span>' in html


def test_text_is_escaped(zoo_folder, tmp_path):
    from caption.fake_captioner import FakeCaptioner

    videos = zoo_folder({"a.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out, FakeCaptioner(["<script>alert(1)</script> & 바다"]))
    write_review(out)
    html = (out / "review.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 바다" in html


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "nowhere", "no such folder"),
    (lambda p: p, "no captions.jsonl"),
    (lambda p: (p / "file.txt", (p / "file.txt").write_text("x"))[0], "not a folder"),
])
def test_not_a_caption_output_is_a_review_error(tmp_path, make, words):
    with pytest.raises(ReviewError, match=words):
        write_review(make(tmp_path))


def test_a_broken_job_file_is_a_review_error(zoo_folder, tmp_path):
    out = tmp_path / "out"
    caption_job([zoo_folder({"a.mp4": "h264"})], out)
    (out / "job.json").write_text("[1, 2")
    with pytest.raises(ReviewError, match="job.json: cannot read the job file"):
        write_review(out)


def test_a_file_changed_since_captioning_shows_no_strip(zoo_folder, tmp_path, video_zoo):
    videos = zoo_folder({"a.mp4": "h264", "b.mp4": "h264"})
    out = tmp_path / "out"
    caption_job([videos], out)
    (videos / "b.mp4").write_bytes(video_zoo.clips["vfr"].read_bytes())  # other frames at other times, not recaptioned
    report = write_review(out)
    assert report.strips == 1 and len(report.frame_errors) == 1
    assert report.frame_errors[0].startswith("b.mp4: ") and "changed since it was captioned" in report.frame_errors[0]
    assert strips_by_key(out)["b.mp4"] is None


def test_scenes_strips_are_the_frames_inside_each_scene(tmp_path):
    from fixtures.shots import write_shots

    videos, out = tmp_path / "videos", tmp_path / "out"
    write_shots(videos / "three.mp4", [("testsrc", 1.0), ("smptebars", 1.4), ("mandelbrot", 1.2)])
    caption_job([videos], out, segment="scenes")
    report = write_review(out)
    assert report.strips == 1 and report.frame_errors == []
    (item,) = load_job(out).items
    assert len(item.record.segments) == 3
    plan = plan_strip(item.key, item.path, item.record.segments, item.record.frame_times, item.record.duration)
    tiles = strip_tiles(out / strips_by_key(out)[item.key], TILE)
    # Test patterns have sharp edges (JPEG loses ~13 levels on them): compare with the sampler's
    # frames put through the same JPEG encoder, which only the very same frames match.
    sampled = sample_tiles(plan)[0]
    again = tmp_path / "again.jpg"
    again.write_bytes(encode_strip(sampled))
    assert_tiles_match(tiles, strip_tiles(again, TILE), tolerance=1.0)
    assert len({int(t.mean()) for t in sampled}) >= 3  # frames of three different shots
