"""`synthesize` and `kvcap data synth`: deterministic H.264 clips + manifest, split, errors."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from click.testing import CliRunner

from kvcap.data.manifest import read_manifest
from kvcap.data.synth import clip_spec, parse_attributes, synthesize, val_indices
from kvcap.data.synth.synthesize import check_args

TINY = dict(size=32, seconds=1.0, fps=8)


def decode(path) -> tuple[np.ndarray, av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, (stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate))


def test_same_seed_same_manifest_bytes_and_frames(tmp_path):
    synthesize(tmp_path / "a", 4, seed=5, **TINY)
    synthesize(tmp_path / "b", 4, seed=5, **TINY)
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
    for clip in sorted((tmp_path / "a" / "clips").iterdir()):
        twin = tmp_path / "b" / "clips" / clip.name
        assert clip.read_bytes() == twin.read_bytes()
        assert np.array_equal(decode(clip)[0], decode(twin)[0])
    synthesize(tmp_path / "c", 4, seed=6, **TINY)
    assert (tmp_path / "c" / "manifest.jsonl").read_bytes() != (tmp_path / "a" / "manifest.jsonl").read_bytes()


def test_clips_are_h264_yuv420p_with_every_frame(tmp_path):
    items = synthesize(tmp_path, 3, seed=1, size=48, seconds=1.5, fps=6)
    for item in items:
        frames, (codec, pix_fmt, fps) = decode(item.video)
        assert frames.shape == (9, 48, 48, 3)
        assert (codec, pix_fmt, fps) == ("h264", "yuv420p", 6.0)
        assert item.video.stat().st_mode & 0o044  # readable by others, like any written file


def test_manifest_holds_relative_videos_captions_and_attributes(tmp_path):
    items = synthesize(tmp_path, 5, seed=2, references=2, **TINY)
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["video"] for line in lines] == [f"clips/synth-2-{i:05d}.mp4" for i in range(5)]
    back = read_manifest(tmp_path / "manifest.jsonl")
    assert [i.video for i in back] == [i.video for i in items]
    for item in back:
        assert isinstance(item.caption, list) and len(item.caption) == 2 and item.caption[0] != item.caption[1]
        for caption in item.caption:
            assert parse_attributes(caption) == item.attributes


def test_a_clip_does_not_change_when_count_grows(tmp_path):
    few = synthesize(tmp_path / "few", 2, seed=9, val_fraction=0, **TINY)
    more = synthesize(tmp_path / "more", 3, seed=9, val_fraction=0, **TINY)
    assert [(i.id, i.caption, i.attributes) for i in few] == [(i.id, i.caption, i.attributes) for i in more[:2]]
    assert clip_spec(9, 1)[0] == clip_spec(9, 1)[0] and clip_spec(9, 1)[0] != clip_spec(9, 2)[0]


def test_val_split_is_the_requested_share_and_seeded():
    assert len(val_indices(1000, 0, 0.1)) == 100
    assert val_indices(1000, 0, 0.1) == val_indices(1000, 0, 0.1) != val_indices(1000, 1, 0.1)
    assert len(val_indices(12, 0, 0.1)) == 1  # at least one val clip when asked for some
    assert val_indices(1, 0, 0.5) == set() and val_indices(50, 0, 0.0) == set()


def test_bad_arguments_name_the_option():
    for kwargs, message in [
        (dict(count=0), "count must be at least 1"),
        (dict(size=33), "size must be an even number"),
        (dict(size=8), "size must be an even number"),
        (dict(fps=0), "fps must be at least 1"),
        (dict(seconds=0.0), "seconds must give at least one frame"),
        (dict(val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
        (dict(references=0), "references must be at least 1"),
    ]:
        args = dict(count=2, size=32, seconds=1.0, fps=8, val_fraction=0.1) | kwargs
        with pytest.raises(ValueError, match=message):
            check_args(**args)


def test_fixture_dataset(synth_dataset):
    assert len(synth_dataset.items) == 12 and len(synth_dataset.val) == 3 and len(synth_dataset.train) == 9
    assert synth_dataset.manifest == synth_dataset.root / "manifest.jsonl"
    for item in synth_dataset.items:
        assert item.video.is_file() and item.video.is_absolute()
        assert set(item.attributes) >= {"time_of_day", "scene", "weather", "motion", "objects"}


def _cli(*args):
    from kvcap.cli import main

    return CliRunner().invoke(main, ["data", "synth", *args])


def test_cli_writes_clips_that_pyav_decodes(tmp_path):
    out = tmp_path / "데이터 synth"
    result = _cli("--out", str(out), "--count", "3", "--seed", "4", "--size", "32", "--seconds", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "wrote 3 clips (2 train, 1 val)" in result.output
    items = read_manifest(out / "manifest.jsonl")
    assert len(items) == 3
    for item in items:
        assert decode(item.video)[0].shape == (8, 32, 32, 3)


@pytest.mark.parametrize(
    "args, option",
    [
        (["--count", "0"], "'--count'"),
        (["--count", "2", "--size", "31"], "'--size'"),
        (["--count", "2", "--val-fraction", "1.5"], "'--val-fraction'"),
        (["--count", "2", "--fps", "0"], "'--fps'"),
    ],
)
def test_cli_bad_arguments_are_usage_errors(tmp_path, args, option):
    result = _cli("--out", str(tmp_path / "x"), *args)
    assert result.exit_code == 2
    assert option in result.output
    assert not (tmp_path / "x").exists()


def test_cli_output_path_that_is_a_file_fails_cleanly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _cli("--out", str(blocker / "sub"), "--count", "1", "--size", "16", "--seconds", "0.5", "--quiet")
    assert result.exit_code == 2
    assert "Error:" in result.output and "Traceback" not in result.output
