"""Decode workers x FFmpeg threads sized to the cores (kvcap.video.threads)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kvcap.video import sample_frames, threads


@pytest.mark.parametrize(("workers", "cores", "expected"), [
    ("auto", 2, (4, 1)), ("auto", 16, (16, 1)), ("auto", 1, (2, 1)), ("auto", 64, (16, 4)),
    (4, 16, (4, 4)), (16, 16, (16, 1)), (32, 16, (32, 1)), (0, 16, (0, 16)),
])
def test_plan_keeps_workers_times_threads_within_the_cores(workers, cores, expected):
    assert threads.plan(workers, cores) == expected


def test_available_cores_follows_the_affinity_mask():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks here")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})  # a real mask, as taskset or a cgroup would set it
    try:
        assert threads.available_cores() == 1
        assert threads.plan("auto") == (2, 1)
    finally:
        os.sched_setaffinity(0, before)
    assert threads.available_cores() == len(before)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_a_fixed_thread_count_samples_the_same_frames(video_zoo, backend):
    pytest.importorskip("decord" if backend == "decord" else "av")
    clip = video_zoo.clips["h264"]
    try:
        threads.set_decoder_threads(0)
        auto = sample_frames(clip, 4, 32, backend=backend).frames
        threads.set_decoder_threads(1)
        assert threads.decoder_threads() == 1
        one = sample_frames(clip, 4, 32, backend=backend).frames
    finally:
        threads.set_decoder_threads(0)
    assert np.array_equal(np.asarray(auto), np.asarray(one))
