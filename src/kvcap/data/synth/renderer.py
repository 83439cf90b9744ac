"""Draw a `SceneSpec` as frames with numpy (PIL only for sprite shapes and the camera resample).

The scene is drawn once as a static *world* wider than the view (kvcap.data.synth.world: sky,
sun or moon, ground, buildings, mountains); each frame copies it, animates the water, blits the moving objects,
cuts the camera's view out of it (pan = the window slides, zoom = the window shrinks or
grows) and then draws rain or snow in screen space. Every cue is large and colourful on
purpose, so a tiny model can read each attribute even at 32 px:

- time of day: the sky gradient's colours and brightness, sun/moon/stars, lit windows;
- scene: where the horizon is and what lies below it (waves, peaks, blocks, a green field);
- weather: grey sky and dimming (흐림), streaks (비), white flakes and white ground (눈);
- camera: the whole picture slides or scales; objects cross the view in their direction.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from kvcap.data.synth.scenes import SceneSpec
from kvcap.data.synth.world import ROAD, WORLD_WIDTH, World

PAN_SPAN = WORLD_WIDTH - 1.0
ZOOM = 1.6  # view scale at the tight end of a zoom
ZOOM_CENTRE_Y = 0.6  # zoom target height (fraction of the picture from the top)
CROSSING = 0.7  # how far movers travel across the view in a clip (view widths) > PAN_SPAN
SPREAD = 0.15  # several movers of a kind sit this far (view widths) either side of the middle

NIGHT_LIKE = ("새벽", "저녁", "밤")
CAR_COLOURS = {"빨간": (220, 40, 40), "노란": (240, 200, 30), "파란": (40, 90, 220), "하얀": (240, 240, 240)}
HULL_COLOURS = {"하얀": (240, 240, 240, 255), "빨간": (210, 40, 40, 255), "노란": (240, 200, 30, 255)}


# --- moving objects --------------------------------------------------------------------------


def _sprite(width: int, height: int, draw) -> np.ndarray:
    """An RGBA sprite (H, W, 4) float32 drawn by `draw(ImageDraw, w, h)` with PIL."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw(ImageDraw.Draw(image), width, height)
    return np.asarray(image, np.float32)


def _blit(frame: np.ndarray, sprite: np.ndarray, x: float, y: float) -> None:
    """Alpha-blend `sprite` with its top-left at (x, y), clipped to the frame."""
    sh, sw = sprite.shape[:2]
    x0, y0 = int(round(x)), int(round(y))
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + sw, frame.shape[1]), min(y0 + sh, frame.shape[0])
    if fx0 >= fx1 or fy0 >= fy1:
        return
    part = sprite[fy0 - y0: fy1 - y0, fx0 - x0: fx1 - x0]
    alpha = part[..., 3:4] / 255.0
    frame[fy0:fy1, fx0:fx1] = frame[fy0:fy1, fx0:fx1] * (1 - alpha) + part[..., :3] * alpha


class _Movers:
    """The moving things of a scene: sprites, their lanes, and where they are at time t."""

    def __init__(self, world: World):
        spec, h, rng = world.spec, world.h, world.rng
        self.world = world
        self.kind = spec.objects
        self.sign = 1.0 if spec.direction == "오른쪽" else -1.0
        self.items: list[tuple[list[np.ndarray], float, float]] = []  # (sprites, lane y, offset)
        if self.kind == "없음":
            return
        night = spec.time_of_day in ("밤", "새벽")
        count = spec.count
        # Spread several movers along their path so they do not hide each other.
        offsets = [float(x) for x in np.linspace(-SPREAD, SPREAD, count)] if count > 1 else [0.0]
        if self.kind == "새":
            colour = (235, 235, 240, 255) if night else (25, 25, 30, 255)
            size = int(h * 0.11)
            up = _sprite(size, size // 2, lambda d, w, hh: d.line([(0, 0), (w // 2, hh - 1), (w - 1, 0)], fill=colour, width=max(2, w // 6)))
            down = _sprite(size, size // 2, lambda d, w, hh: d.line([(0, hh // 2), (w // 2, hh - 1), (w - 1, hh // 2)], fill=colour, width=max(2, w // 6)))
            for offset in offsets:
                self.items.append(([up, down], world.horizon * rng.uniform(0.15, 0.7), offset))
        elif self.kind == "자동차":
            body = CAR_COLOURS[spec.color]
            lamps = spec.time_of_day in NIGHT_LIKE
            sprite = _sprite(int(h * 0.22), int(h * 0.1), lambda d, w, hh: self._car(d, w, hh, body, lamps))
            for i, offset in enumerate(offsets):
                lane = h * (ROAD[0] + 0.045 * (i % 2)) - h * 0.05
                self.items.append(([sprite], lane, offset))
        elif self.kind == "배":
            hull = HULL_COLOURS[spec.color]
            for i, offset in enumerate(offsets):
                scale = 1.0 if i == 0 else 0.7
                sprite = _sprite(int(h * 0.3 * scale), int(h * 0.26 * scale), lambda d, w, hh: self._boat(d, w, hh, hull))
                self.items.append(([sprite], world.horizon + h * (0.14 if i == 0 else 0.05) - h * 0.26 * scale, offset))
        elif self.kind == "구름":
            level = 250 if spec.time_of_day in ("아침", "낮") else 200 if spec.time_of_day != "밤" else 120
            sprite = _sprite(int(h * 0.42), int(h * 0.17), lambda d, w, hh: self._cloud(d, w, hh, level))
            for i, offset in enumerate(offsets):
                self.items.append(([sprite], world.horizon * (0.08 + 0.3 * i), offset))

    def _car(self, d, w, hh, body, lamps):
        d.rectangle([w * 0.25, hh * 0.1, w * 0.72, hh * 0.5], fill=body + (255,))
        d.rectangle([w * 0.32, hh * 0.17, w * 0.65, hh * 0.45], fill=(150, 200, 230, 255))
        d.rectangle([0, hh * 0.45, w - 1, hh * 0.82], fill=body + (255,))
        d.ellipse([w * 0.1, hh * 0.62, w * 0.3, hh - 1], fill=(15, 15, 15, 255))
        d.ellipse([w * 0.68, hh * 0.62, w * 0.88, hh - 1], fill=(15, 15, 15, 255))
        if lamps:  # headlights at the front (the right end; flipped for leftward cars)
            d.rectangle([w * 0.9, hh * 0.5, w - 1, hh * 0.65], fill=(255, 255, 170, 255))

    @staticmethod
    def _boat(d, w, hh, hull):
        d.polygon([(0, hh * 0.7), (w - 1, hh * 0.7), (w * 0.8, hh - 1), (w * 0.2, hh - 1)], fill=hull)
        d.rectangle([w * 0.48, hh * 0.05, w * 0.52, hh * 0.7], fill=(60, 40, 30, 255))
        d.polygon([(w * 0.53, hh * 0.08), (w * 0.53, hh * 0.66), (w * 0.92, hh * 0.66)], fill=(250, 250, 250, 255))
        d.polygon([(w * 0.47, hh * 0.2), (w * 0.47, hh * 0.66), (w * 0.18, hh * 0.66)], fill=(230, 60, 50, 255))

    @staticmethod
    def _cloud(d, w, hh, level):
        colour = (level, level, level + 5, 235)
        for cx, cy, r in ((0.25, 0.6, 0.38), (0.45, 0.4, 0.5), (0.68, 0.55, 0.42), (0.85, 0.68, 0.3)):
            d.ellipse([w * cx - hh * r, hh * cy - hh * r, w * cx + hh * r, hh * cy + hh * r], fill=colour)
        d.rectangle([w * 0.2, hh * 0.6, w * 0.88, hh * 0.95], fill=colour)

    def draw(self, frame: np.ndarray, t: float, index: int, view_cx: float, view_w: float) -> None:
        """Draw every mover at clip time t in [0, 1]; they cross the view in their direction.

        Positions follow the view (centre `view_cx`, width `view_w`, world pixels), so they stay
        on screen while the camera moves, and their world motion keeps the sign of `direction`
        because they cross CROSSING of a view while a pan moves the view by only PAN_SPAN.
        """
        for sprites, lane, offset in self.items:
            sprite = sprites[(index // 2) % len(sprites)]
            if self.sign < 0:
                sprite = sprite[:, ::-1]
            rel = self.sign * (t - 0.5) * CROSSING + offset  # in view widths, within -0.5 .. 0.5
            x = view_cx + rel * view_w - sprite.shape[1] / 2
            _blit(frame, sprite, x, lane)


# --- camera and weather -------------------------------------------------------------------------


def _view(motion: str, t: float, world: World) -> tuple[float, float, float, float]:
    """The camera's window (x0, y0, x1, y1) in world pixels at time t in [0, 1]."""
    full_w = world.h  # the view is square: one world height wide at zoom 1
    if motion in ("왼쪽 패닝", "오른쪽 패닝"):
        span = world.w - full_w
        x0 = span * ((1 - t) if motion == "왼쪽 패닝" else t)
        return x0, 0.0, x0 + full_w, float(world.h)
    scale = 1.0
    if motion == "줌인":
        scale = 1 + (ZOOM - 1) * t
    elif motion == "줌아웃":
        scale = ZOOM - (ZOOM - 1) * t
    side = full_w / scale
    # Zoom towards a point below the middle so the road (and its cars) stays in view.
    cx, cy = world.w / 2, world.h * ZOOM_CENTRE_Y
    y0 = min(max(cy - side / 2, 0.0), world.h - side)
    return cx - side / 2, y0, cx + side / 2, y0 + side


class _Weather:
    """Rain streaks or snow flakes drawn on the output frame (screen space)."""

    def __init__(self, spec: SceneSpec, size: int, rng: np.random.Generator):
        self.kind = spec.weather
        self.size = size
        if self.kind == "비":
            n = max(size * size // 45, 20)
            self.x = rng.uniform(0, size, n)
            self.y = rng.uniform(0, size, n)
            self.length = max(size / 9, 4)
        elif self.kind == "눈":
            n = max(size * size // 35, 25)
            self.x = rng.uniform(0, size, n)
            self.y = rng.uniform(0, size, n)
            self.phase = rng.uniform(0, 2 * np.pi, n)
            self.big = rng.random(n) < 0.5

    def draw(self, frame: np.ndarray, t: float) -> None:
        s = self.size
        if self.kind == "비":
            fall = t * s * 6.0
            steps = np.linspace(0, 1, int(self.length))[:, None]  # (L, 1) along each streak
            ys = (self.y[None, :] + fall + steps * self.length) % s
            xs = (self.x[None, :] - (fall + steps * self.length) * 0.25) % s
            yi, xi = ys.astype(int).ravel(), xs.astype(int).ravel()
            frame[yi, xi] = frame[yi, xi] * 0.35 + np.array([200, 210, 230], np.float32) * 0.65
        elif self.kind == "눈":
            fall = t * s * 1.2
            ys = (self.y + fall) % s
            xs = (self.x + np.sin(self.phase + t * 8) * s * 0.03) % s
            yi, xi = ys.astype(int), xs.astype(int)
            frame[yi, xi] = 250
            big_y, big_x = yi[self.big], xi[self.big]
            frame[np.minimum(big_y + 1, s - 1), big_x] = 250
            frame[big_y, np.minimum(big_x + 1, s - 1)] = 250
            frame[np.minimum(big_y + 1, s - 1), np.minimum(big_x + 1, s - 1)] = 250


def render_frames(spec: SceneSpec, size: int = 112, num_frames: int = 32) -> np.ndarray:
    """Render `spec` as (num_frames, size, size, 3) uint8 RGB frames; same spec, same pixels."""
    if size < 16 or num_frames < 1:
        raise ValueError(f"need size >= 16 and at least one frame (got size {size}, {num_frames} frames)")
    world = World(spec, size)
    movers = _Movers(world)
    weather = _Weather(spec, size, np.random.default_rng([spec.layout_seed, 1]))
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    canvas = world.img.copy()
    for i in range(num_frames):
        t = i / (num_frames - 1) if num_frames > 1 else 0.5
        canvas[:] = world.img
        world.animate_water(canvas, t)
        x0, y0, x1, y1 = _view(spec.motion, t, world)
        movers.draw(canvas, t, i, (x0 + x1) / 2, x1 - x0)
        view = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize(
            (size, size), Image.BILINEAR, box=(x0, y0, x1, y1)
        )
        frame = np.asarray(view, np.float32).copy()
        weather.draw(frame, t)
        frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames
