"""Shot detection + per-scene sampling (`kvcap.video.scenes`) on real clips of lavfi test sources."""

from __future__ import annotations

import numpy as np
import pytest

from kvcap.video.scenes import SceneOptions, scan_scenes

from fixtures.shots import FPS, write_shots

THREE = [("testsrc", 1.0), ("smptebars", 1.4), ("mandelbrot", 1.2)]


@pytest.fixture(scope="module")
def three_shots(tmp_path_factory):
    return write_shots(tmp_path_factory.mktemp("shots") / "three.mp4", THREE)


def test_three_hard_cuts_give_three_scenes_within_one_frame_of_the_cuts(three_shots):
    path, cuts = three_shots
    scan = scan_scenes(path, num_frames=4, size=32)
    assert len(scan.scenes) == 3
    assert len(scan.cuts) == 2 and all(abs(a - b) <= 1 / FPS for a, b in zip(scan.cuts, cuts))
    bounds = [0.0, *cuts, sum(s for _, s in THREE)]
    for scene, start, end in zip(scan.scenes, bounds, bounds[1:]):
        assert abs(scene.start - start) <= 1 / FPS and abs(scene.end - end) <= 1 / FPS
        assert scene.frames.shape == (4, 32, 32, 3) and scene.frames.dtype == np.uint8
        assert all(scene.start <= t < scene.end for t in scene.times)  # sampled inside its scene
        assert scene.times == sorted(scene.times) and len(set(scene.times)) == 4
    assert scan.decoded == round(sum(s for _, s in THREE) * FPS)  # every frame decoded once


def test_scene_frames_are_the_frames_of_that_shot(three_shots):
    """Each scene's frames look like its own source (smptebars is static: all its frames match)."""
    path, _ = three_shots
    scan = scan_scenes(path, num_frames=4, size=32)
    bars = scan.scenes[1].frames.astype(int)
    assert np.abs(bars - bars[0]).mean() < 3  # one static pattern
    for other in (scan.scenes[0], scan.scenes[2]):
        assert np.abs(other.frames.astype(int) - bars[0]).mean() > 20


def test_one_shot_is_one_scene(tmp_path):
    path, _ = write_shots(tmp_path / "one.mp4", [("testsrc", 2.0)])  # moving counter and sweep
    scan = scan_scenes(path, num_frames=8, size=32)
    assert [(s.start, s.end) for s in scan.scenes] == [(0.0, 2.0)] and scan.cuts == []


def test_a_long_static_shot_is_split_at_the_maximum_length(tmp_path):
    path, _ = write_shots(tmp_path / "static.mp4", [("smptebars", 3.0)])
    scan = scan_scenes(path, num_frames=2, size=32, options=SceneOptions(max_seconds=1.0))
    assert [(s.start, s.end) for s in scan.scenes] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert scan.cuts == []  # splits are not cuts


def test_a_strobe_does_not_make_scenes_shorter_than_the_minimum(tmp_path):
    strobe = [("testsrc" if i % 2 else "smptebars", 2 / FPS) for i in range(20)]  # a flip every 2 frames
    path, flips = write_shots(tmp_path / "strobe.mp4", strobe)
    scan = scan_scenes(path, num_frames=2, size=32, options=SceneOptions(min_seconds=0.5))
    assert len(flips) == 19 and 1 <= len(scan.scenes) <= 3
    assert all(s.end - s.start >= 0.5 - 1e-6 for s in scan.scenes)


def test_a_short_last_shot_joins_the_scene_before(tmp_path):
    path, cuts = write_shots(tmp_path / "tail.mp4", [("testsrc", 1.0), ("smptebars", 0.2)])
    scan = scan_scenes(path, num_frames=2, size=32, options=SceneOptions(min_seconds=0.5))
    assert [(s.start, s.end) for s in scan.scenes] == [(0.0, 1.2)] and scan.cuts == []


def test_memory_per_scene_stays_bounded_for_a_long_scene(tmp_path):
    """A 20 s shot (300 frames) holds at most 4 x frames decoded frames at once, and each sampled
    frame is within half the final stride (32 frames: 16 / 15 s) of its part's centre."""
    path, _ = write_shots(tmp_path / "long.mp4", [("testsrc", 20.0)], size=(64, 48))
    scan = scan_scenes(path, num_frames=3, size=32)
    (scene,) = scan.scenes
    assert scan.decoded == 300 and scan.held <= 4 * 3
    centres = [20 / 6, 10.0, 20 * 5 / 6]
    assert all(abs(t - c) <= 16 / FPS + 1e-6 for t, c in zip(scene.times, centres)), scene.times


def test_a_one_shot_clip_samples_within_a_frame_of_whole_clip_sampling(tmp_path):
    from kvcap.video import sample_frames

    path, _ = write_shots(tmp_path / "one.mp4", [("testsrc", 2.0)])
    (scene,) = scan_scenes(path, num_frames=4, size=32).scenes
    reference = sample_frames(path, num_frames=4, size=32)
    assert all(abs(a - b) <= 1 / FPS + 1e-6 for a, b in zip(scene.times, reference.times))
