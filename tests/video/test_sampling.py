"""Probe and sample every clip of the zoo: codecs, rotation, VFR, one frame, windows."""

import numpy as np
import pytest

from fixtures.video import FPS, MARKER, gray_for_time
from kvcap.video import probe, sample_frames
from kvcap.video.probe import decord_available

GOOD = ["h264", "hevc", "vp9", "av1", "mpeg4", "mjpeg", "rotated", "vfr", "odd_size", "korean"]


@pytest.mark.parametrize("name", GOOD)
def test_every_good_clip_probes_and_samples_8_frames(video_zoo, name):
    path = video_zoo.clips[name]
    info = probe(path)
    assert info.duration > 0 and info.fps > 0 and info.frame_count >= 8
    got = sample_frames(path, num_frames=8, size=32)
    assert got.frames.shape == (8, 32, 32, 3) and got.frames.dtype == np.uint8
    assert not got.repeated and got.warning is None
    times = np.array(got.times)
    assert np.all(np.diff(times) > 0), times
    assert times[0] >= 0 and times[-1] <= info.duration
    # Each frame's brightness codes its own time: the frame really is the one at that time.
    # (centre pixel; the red marker is cropped away at the corner)
    for frame, t in zip(got.frames, got.times):
        assert abs(int(frame[16, 16].mean()) - gray_for_time(t)) <= 12, (name, t)


def test_frames_are_the_ones_shown_at_segment_centres(video_zoo):
    got = sample_frames(video_zoo.clips["h264"], num_frames=8, size=None)
    centres = [(i + 0.5) * 2.0 / 8 for i in range(8)]
    assert got.target_times == pytest.approx(centres)
    for t, target in zip(got.times, centres):
        assert target - 1 / FPS < t <= target + 1e-6


def test_size_is_shortest_side_then_centre_crop(video_zoo):
    path = video_zoo.clips["korean"]  # 120x72
    native = sample_frames(path, num_frames=2, size=None)
    assert native.frames.shape == (2, 72, 120, 3)
    square = sample_frames(path, num_frames=2, size=36)
    assert square.frames.shape == (2, 36, 36, 3)
    # The marker sits in the left 12 columns of 120: cropped away by the centre crop.
    assert square.frames[0, :4, :4, 0].mean() < 200
    assert native.frames[0, :4, :4, 0].mean() > 200


def test_rotated_clip_comes_out_as_a_player_shows_it(video_zoo):
    coded_w, coded_h = video_zoo.rotated_coded_size
    info = probe(video_zoo.clips["rotated"])
    assert info.rotation == 90 and (info.width, info.height) == (coded_h, coded_w)
    got = sample_frames(video_zoo.clips["rotated"], num_frames=3, size=None)
    assert got.frames.shape == (3, coded_w, coded_h, 3)  # portrait now: H=160, W=96
    frame = got.frames[0].astype(int)
    m = MARKER // 2
    # Turned 90° clockwise: the top-left marker ends up top-right.
    assert frame[:m, -m:, 0].mean() > 180 and frame[:m, -m:, 1].mean() < 80
    assert abs(frame[:m, :m, 0].mean() - frame[:m, :m, 1].mean()) < 30  # gray, no marker


def test_vfr_uses_timestamps_not_index_times_fps(video_zoo):
    got = sample_frames(video_zoo.clips["vfr"], num_frames=8, size=None)
    frame_times = np.array(video_zoo.vfr_times)
    for t, target in zip(got.times, got.target_times):
        # the frame shown at `target`: the last frame starting at or before it
        assert t == pytest.approx(frame_times[frame_times <= target + 1e-6].max(), abs=1e-3)


def test_one_frame_clip_repeats_with_a_warning(video_zoo):
    got = sample_frames(video_zoo.clips["one_frame"], num_frames=8, size=16)
    assert got.frames.shape == (8, 16, 16, 3)
    assert got.repeated and "1 decodable frame" in got.warning
    assert str(video_zoo.clips["one_frame"]) in got.warning and "\n" not in got.warning


def test_window_restricts_sampling(video_zoo):
    got = sample_frames(video_zoo.clips["h264"], num_frames=4, size=16, start=1.0, end=2.0)
    assert all(1.0 - 1 / FPS < t < 2.0 for t in got.times)
    assert got.target_times == pytest.approx([1.125, 1.375, 1.625, 1.875])
    tiny = sample_frames(video_zoo.clips["h264"], num_frames=8, size=16, start=0.0, end=0.2)
    assert tiny.repeated  # 3 frames in 0.2 s at 15 fps
    with pytest.raises(ValueError, match="after the end"):
        sample_frames(video_zoo.clips["h264"], num_frames=2, size=16, start=5.0, end=6.0)


@pytest.mark.skipif(not decord_available(), reason="decord not installed")
@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "mpeg4", "mjpeg", "vfr", "rotated"])
def test_decord_backend_picks_the_same_frames_as_pyav(video_zoo, name):
    path = video_zoo.clips[name]
    a = sample_frames(path, num_frames=8, size=32, backend="pyav")
    b = sample_frames(path, num_frames=8, size=32, backend="decord")
    assert b.backend == "decord" and b.frames.shape == a.frames.shape
    assert b.times == pytest.approx(a.times, abs=1e-3)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 8  # scalers differ slightly


@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "av1", "mpeg4", "mjpeg", "odd_size", "korean", "rotated"])
def test_constant_rate_clips_give_the_frame_shown_at_each_centre(video_zoo, name):
    got = sample_frames(video_zoo.clips[name], num_frames=8, size=16)
    for t, target in zip(got.times, got.target_times):
        assert target - 1 / FPS - 1e-3 < t <= target + 1e-3, (name, t, target)


def test_long_clip_with_many_gops_seeks_only_into_later_gops(tmp_path, monkeypatch):
    """Keyframe every 10 frames, 90 frames: targets in 8 different GOPs -> at most 7 seeks,
    and every frame still matches its time (seeking lands on the right frame)."""
    from fixtures.video import write_clip
    from kvcap.video.backends import pyav_backend

    path = write_clip(tmp_path / "gops.mp4", "libx264", seconds=6.0, options={"g": "10", "keyint_min": "10"})
    seeks = []
    original = pyav_backend._Decoder.seek
    monkeypatch.setattr(pyav_backend._Decoder, "seek", lambda self, pts: (seeks.append(pts), original(self, pts)))
    got = sample_frames(path, num_frames=8, size=16)
    assert 1 <= len(seeks) <= 7
    for frame, t, target in zip(got.frames, got.times, got.target_times):
        assert target - 1 / FPS - 1e-3 < t <= target + 1e-3
        assert abs(int(frame[8, 8].mean()) - gray_for_time(t, 6.0)) <= 12

    # Dense targets inside one GOP: no seek at all after the first GOP is reached.
    seeks.clear()
    sample_frames(path, num_frames=8, size=16, start=0.0, end=0.6)
    assert seeks == []


def test_truncated_file_with_index_up_front_samples_what_decodes(tmp_path):
    """moov first (faststart), cut at 60%: probing works, later targets repeat the last good frame."""
    from fixtures.video import write_clip

    full = write_clip(tmp_path / "full.mp4", "libx264", seconds=4.0, options={"g": "15"},
                      container_options={"movflags": "faststart"})
    data = full.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data[:200]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    got = sample_frames(cut, num_frames=8, size=16)
    assert got.frames.shape == (8, 16, 16, 3)
    assert got.repeated and "frames repeated" in got.warning
    assert got.times[-1] < got.target_times[-1] - 0.5
