"""Synthetic scenes: the pixels carry each attribute; a seed gives identical clips and manifest."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from kvcap.data.synth import SceneSpec
from kvcap.data.synth.renderer import ZOOM, ZOOM_CENTRE_Y, render_frames


def spec(**changes) -> SceneSpec:
    base = SceneSpec(
        time_of_day="낮", scene="산", weather="맑음", motion="고정", objects="없음", direction="없음",
        variant="푸름", count=0, color="없음", layout_seed=7,
    )
    return replace(base, **changes)


def sky(frames: np.ndarray) -> np.ndarray:
    """The top fifth of every frame (sky in every scene), float."""
    return frames[:, : frames.shape[1] // 5].astype(np.float32)


@pytest.mark.parametrize("size", [32, 112])
@pytest.mark.parametrize("scene, variant", [("바다", "잔잔함"), ("산", "푸름"), ("도시", "고층"), ("들판", "초록")])
def test_night_is_darker_than_day_and_dusk_is_redder(size, scene, variant):
    day = render_frames(spec(scene=scene, variant=variant), size, 2)
    night = render_frames(spec(scene=scene, variant=variant, time_of_day="밤"), size, 2)
    evening = render_frames(spec(scene=scene, variant=variant, time_of_day="저녁"), size, 2)
    assert night.mean() < 0.4 * day.mean()
    assert sky(night).mean() < 0.3 * sky(day).mean()
    red_minus_blue = lambda f: (f[..., 0] - f[..., 2]).mean()  # noqa: E731
    assert red_minus_blue(evening.astype(np.float32)) > red_minus_blue(day.astype(np.float32)) + 40


def test_overcast_sky_is_grey():
    clear = sky(render_frames(spec(), 64, 2))
    overcast = sky(render_frames(spec(weather="흐림"), 64, 2))
    saturation = lambda f: (f.max(-1) - f.min(-1)).mean()  # noqa: E731
    assert saturation(overcast) < 0.5 * saturation(clear)


def test_rain_and_snow_are_drawn_and_move():
    clear = render_frames(spec(time_of_day="저녁"), 64, 8).astype(np.int16)
    assert np.abs(np.diff(clear, axis=0)).max() == 0  # nothing moves in a still, empty clear scene
    for weather in ("비", "눈"):
        frames = render_frames(spec(time_of_day="저녁", weather=weather), 64, 8).astype(np.int16)
        changed = (np.abs(np.diff(frames, axis=0)).max(-1) > 30).mean()
        assert changed > 0.03, weather
    snow = render_frames(spec(time_of_day="저녁", weather="눈"), 64, 4)
    white = (snow.min(-1) >= 245).mean()
    assert white > 0.02 and (clear.min(-1) >= 245).mean() == 0


def test_snow_whitens_the_ground():
    bottom = lambda f: f[:, -f.shape[1] // 4:].astype(np.float32)  # noqa: E731
    clear = bottom(render_frames(spec(scene="들판", variant="초록"), 64, 2))
    snowy = bottom(render_frames(spec(scene="들판", variant="초록", weather="눈"), 64, 2))
    assert snowy.mean() > clear.mean() + 40


def test_scenes_have_their_colours_and_lights():
    low_half = lambda f: f[:, f.shape[1] // 2 + 4:].astype(np.float32).reshape(-1, 3).mean(0)  # noqa: E731
    sea = low_half(render_frames(spec(scene="바다", variant="잔잔함"), 64, 2))
    field = low_half(render_frames(spec(scene="들판", variant="초록"), 64, 2))
    golden = low_half(render_frames(spec(scene="들판", variant="황금"), 64, 2))
    assert sea[2] > sea[1] > sea[0]  # blue water
    assert field[1] > field[0] and field[1] > field[2]  # green field
    assert golden[0] > field[0] + 50  # a golden field is much redder than a green one
    lit = lambda f: ((f[..., 0] > 200) & (f[..., 1] > 170) & (f[..., 2] < 150)).sum()  # noqa: E731
    assert lit(render_frames(spec(scene="도시", variant="고층", time_of_day="밤"), 64, 1)) > 20  # lit windows
    assert lit(render_frames(spec(scene="도시", variant="고층"), 64, 1)) == 0


def _shift(a: np.ndarray, b: np.ndarray, max_shift: int) -> int:
    """How far (pixels, + = right) the picture moved from frame a to frame b."""
    pa = a.astype(np.float32).mean(axis=(0, 2))
    pb = b.astype(np.float32).mean(axis=(0, 2))
    errors = {}
    for s in range(-max_shift, max_shift + 1):
        x = pa[max(0, -s): len(pa) - max(0, s)]
        y = pb[max(0, s): len(pb) - max(0, -s)]
        errors[s] = float(np.mean((x - y) ** 2))
    return min(errors, key=errors.get)


@pytest.mark.parametrize("scene, variant", [("산", "설산"), ("도시", "저층")])
def test_camera_pans_move_the_whole_picture(scene, variant):
    size = 64
    still = render_frames(spec(scene=scene, variant=variant), size, 8)
    assert np.array_equal(still[0], still[-1])
    left = render_frames(spec(scene=scene, variant=variant, motion="왼쪽 패닝"), size, 8)
    right = render_frames(spec(scene=scene, variant=variant, motion="오른쪽 패닝"), size, 8)
    # Panning left brings in what was on the left: the picture slides right by half a view.
    assert _shift(left[0], left[-1], size * 3 // 4) > size // 3
    assert _shift(right[0], right[-1], size * 3 // 4) < -size // 3


@pytest.mark.parametrize("motion", ["줌인", "줌아웃"])
def test_zoom_enlarges_or_shrinks_the_middle(motion):
    size = 64
    frames = render_frames(spec(scene="도시", variant="고층", time_of_day="밤", motion=motion), size, 8)
    wide, tight = (frames[0], frames[-1]) if motion == "줌인" else (frames[-1], frames[0])
    side = size / ZOOM
    y0 = min(max(size * ZOOM_CENTRE_Y - side / 2, 0), size - side)
    box = ((size - side) / 2, y0, (size + side) / 2, y0 + side)
    enlarged = np.asarray(Image.fromarray(wide).resize((size, size), Image.BILINEAR, box=box), np.float32)
    mse = lambda a, b: float(np.mean((np.asarray(a, np.float32) - b) ** 2))  # noqa: E731
    assert mse(tight, enlarged) < 0.5 * mse(tight, wide.astype(np.float32))


@pytest.mark.parametrize(
    "scene, variant, objects, count, color",
    [("산", "푸름", "새", 3, "없음"), ("도시", "저층", "자동차", 1, "빨간"), ("바다", "잔잔함", "배", 1, "하얀"), ("들판", "초록", "구름", 1, "없음")],
)
@pytest.mark.parametrize("direction", ["왼쪽", "오른쪽"])
def test_objects_cross_the_view_in_their_direction(scene, variant, objects, count, color, direction):
    size = 64
    empty = render_frames(spec(scene=scene, variant=variant), size, 8).astype(np.int16)
    moving = render_frames(
        spec(scene=scene, variant=variant, objects=objects, direction=direction, count=count, color=color), size, 8
    ).astype(np.int16)
    centres = []
    for index in (0, 7):
        mask = np.abs(moving[index] - empty[index]).max(-1) > 25
        assert mask.sum() > 6, (objects, index)  # the thing is visible even at 64 px
        centres.append(np.nonzero(mask)[1].mean())
    travelled = centres[1] - centres[0]
    assert (travelled > size * 0.4) if direction == "오른쪽" else (travelled < -size * 0.4)


def test_same_spec_same_pixels_and_layout_seed_changes_details():
    a = render_frames(spec(weather="비", objects="새", direction="왼쪽", count=4), 48, 4)
    assert np.array_equal(a, render_frames(spec(weather="비", objects="새", direction="왼쪽", count=4), 48, 4))
    assert not np.array_equal(a, render_frames(spec(weather="비", objects="새", direction="왼쪽", count=4, layout_seed=8), 48, 4))


def test_rendering_a_4s_112px_clip_is_fast():
    busy = spec(scene="바다", variant="거침", weather="비", motion="줌인", objects="배", direction="왼쪽", count=2, color="노란")
    render_frames(busy, 112, 32)  # warm-up
    best = min(_timed(lambda: render_frames(busy, 112, 32)) for _ in range(3))
    assert best < 0.5, best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_render_rejects_tiny_sizes():
    with pytest.raises(ValueError, match="size >= 16"):
        render_frames(spec(), 8, 4)
