"""Draw a `SceneSpec` as frames with numpy (PIL only for sprite shapes and the camera resample).

The scene is drawn once as a static *world* wider than the view (sky, sun or moon, ground,
buildings, mountains); each frame copies it, animates the water, blits the moving objects,
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

WORLD_WIDTH = 1.5  # world width in view widths: room for a pan of half a view
SUPERSAMPLE = 1.5  # world pixels per output pixel, so zoomed views stay sharp
PAN_SPAN = WORLD_WIDTH - 1.0
ZOOM = 1.6  # view scale at the tight end of a zoom
ZOOM_CENTRE_Y = 0.6  # zoom target height (fraction of the picture from the top)
CROSSING = 0.7  # how far movers travel across the view in a clip (view widths) > PAN_SPAN
SPREAD = 0.15  # several movers of a kind sit this far (view widths) either side of the middle

# Sky gradient (top, horizon) colours and the light on the ground, per time of day.
SKY = {
    "새벽": ((28, 30, 88), (236, 150, 160)),
    "아침": ((96, 166, 236), (255, 214, 140)),
    "낮": ((24, 104, 232), (160, 210, 255)),
    "저녁": ((72, 34, 104), (255, 116, 36)),
    "밤": ((2, 4, 18), (18, 24, 62)),
}
LIGHT = {"새벽": 0.5, "아침": 0.85, "낮": 1.0, "저녁": 0.62, "밤": 0.22}
TINT = {  # colour cast on the ground
    "새벽": (0.95, 0.85, 1.1),
    "아침": (1.08, 1.0, 0.9),
    "낮": (1.0, 1.0, 1.0),
    "저녁": (1.2, 0.85, 0.7),
    "밤": (0.75, 0.85, 1.25),
}
OVERCAST_GREY = {"새벽": 96, "아침": 160, "낮": 178, "저녁": 112, "밤": 34}
WEATHER_LIGHT = {"맑음": 1.0, "흐림": 0.82, "비": 0.66, "눈": 0.95}
HORIZON = {"바다": 0.5, "산": 0.62, "도시": 0.74, "들판": 0.56}
ROAD = (0.82, 0.94)  # road band (fraction of height) in the city and the field
NIGHT_LIKE = ("새벽", "저녁", "밤")
CAR_COLOURS = {"빨간": (220, 40, 40), "노란": (240, 200, 30), "파란": (40, 90, 220), "하얀": (240, 240, 240)}
HULL_COLOURS = {"하얀": (240, 240, 240, 255), "빨간": (210, 40, 40, 255), "노란": (240, 200, 30, 255)}


def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


class _World:
    """The static world picture in float32 RGB, plus what the frames need to animate it."""

    def __init__(self, spec: SceneSpec, size: int):
        self.spec = spec
        self.rng = np.random.default_rng(spec.layout_seed)
        self.h = int(round(size * SUPERSAMPLE))
        self.w = int(round(self.h * WORLD_WIDTH))
        self.horizon = int(round(self.h * HORIZON[spec.scene]))
        self.img = np.zeros((self.h, self.w, 3), np.float32)
        self.light = LIGHT[spec.time_of_day] * WEATHER_LIGHT[spec.weather]
        self.tint = np.asarray(TINT[spec.time_of_day], np.float32)
        self._sky()
        self._celestial()
        self._overcast_clouds()
        getattr(self, {"바다": "_sea", "산": "_mountains", "도시": "_city", "들판": "_field"}[spec.scene])()

    # --- sky -----------------------------------------------------------------------------
    def _sky(self) -> None:
        top, bottom = SKY[self.spec.time_of_day]
        t = np.linspace(0, 1, self.horizon, dtype=np.float32)[:, None]
        sky = _mix(top, bottom, t)  # (horizon, 3)
        if self.spec.weather != "맑음":
            grey = OVERCAST_GREY[self.spec.time_of_day] + (20 if self.spec.weather == "눈" else 0)
            # keep a third of the sky's own colour so the time of day still shows through
            sky = _mix(sky, (grey, grey, grey + 6), 0.62)
            if self.spec.weather == "비":
                sky *= 0.8
        self.img[: self.horizon] = sky[:, None, :]
        self.sky_visible = self.spec.weather == "맑음"

    def _disc(self, cx: float, cy: float, r: float, colour, alpha: float = 1.0, target=None) -> None:
        img = self.img if target is None else target
        y0, y1 = max(int(cy - r - 1), 0), min(int(cy + r + 2), img.shape[0])
        x0, x1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), img.shape[1])
        if y0 >= y1 or x0 >= x1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = np.clip(r + 0.5 - np.hypot(yy - cy, xx - cx), 0, 1)[..., None] * alpha
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - inside) + np.asarray(colour, np.float32) * inside

    def _celestial(self) -> None:
        tod, h, w = self.spec.time_of_day, self.h, self.w
        if not self.sky_visible:
            return
        if tod in ("밤", "새벽"):
            count = 90 if tod == "밤" else 25
            ys = self.rng.integers(0, int(self.horizon * 0.8), count)
            xs = self.rng.integers(0, w, count)
            level = 255 if tod == "밤" else 200
            self.img[ys, xs] = level
            if tod == "밤":
                self.img[ys[: count // 3], np.minimum(xs[: count // 3] + 1, w - 1)] = level
            self._disc(w * self.rng.uniform(0.3, 0.7), h * 0.16, h * 0.06, (240, 240, 215))
            if tod == "새벽":  # a thin, paling moon
                self._disc(w * 0.5 + h * 0.03, h * 0.16 - h * 0.01, h * 0.055, SKY["새벽"][0])
        else:
            cx = {"아침": 0.3, "낮": 0.5, "저녁": 0.7}[tod] * w
            cy = {"아침": 0.75, "낮": 0.14, "저녁": 0.85}[tod] * self.horizon
            r = {"아침": 0.075, "낮": 0.065, "저녁": 0.1}[tod] * h
            colour = {"아침": (255, 236, 150), "낮": (255, 255, 225), "저녁": (255, 80, 30)}[tod]
            self._disc(cx, cy, r * 2.2, colour, alpha=0.25)  # glow
            self._disc(cx, cy, r, colour)
        self.sun_x = None

    def _overcast_clouds(self) -> None:
        if self.spec.weather == "맑음":
            return
        grey = OVERCAST_GREY[self.spec.time_of_day] * (0.7 if self.spec.weather == "비" else 0.85)
        for _ in range(7):
            cx, cy = self.rng.uniform(0, self.w), self.rng.uniform(0.05, 0.45) * self.horizon
            for _ in range(3):
                self._disc(cx + self.rng.uniform(-1, 1) * self.h * 0.12, cy + self.rng.uniform(-1, 1) * self.h * 0.03,
                           self.h * self.rng.uniform(0.06, 0.11), (grey, grey, grey + 4), alpha=0.8)

    # --- ground --------------------------------------------------------------------------
    def _lit(self, colour) -> np.ndarray:
        """A ground colour under this scene's light (time of day, weather, snow cover)."""
        c = np.asarray(colour, np.float32)
        if self.spec.weather == "눈":
            c = _mix(c, (235, 238, 245), 0.55)  # snow cover, but the scene's colours still show
        return np.clip(c * self.tint * self.light, 0, 255)

    def _sea(self) -> None:
        top, bottom = SKY[self.spec.time_of_day]
        rows = self.h - self.horizon
        deep = _mix((16, 70, 150), bottom, 0.25)
        t = np.linspace(0, 1, rows, dtype=np.float32)[:, None]
        water = _mix(deep * 1.1, deep * 0.55, t) * self.light * self.tint
        self.img[self.horizon:] = np.clip(water, 0, 255)[:, None, :]
        # Wave crests: rows further down are nearer, so their waves are longer and brighter.
        depth = np.linspace(0.1, 1, rows, dtype=np.float32)
        self.wave_freq = (2 * np.pi / (self.h * (0.05 + 0.25 * depth)))[:, None]  # (rows, 1)
        self.wave_phase = self.rng.uniform(0, 2 * np.pi, rows).astype(np.float32)[:, None]
        rough = self.spec.variant == "거침"
        self.wave_threshold = 0.45 if rough else 0.9
        self.wave_speed = 12.0 if rough else 4.0
        self.wave_gain = ((70 + 90 * depth) if rough else (25 + 45 * depth))[:, None, None] * max(self.light, 0.35)
        self.xs = np.arange(self.w, dtype=np.float32)[None, :]
        self.sea = self.img[self.horizon:].copy()

    def animate_water(self, frame: np.ndarray, t: float) -> None:
        if self.spec.scene != "바다":
            return
        crest = np.sin(self.xs * self.wave_freq + self.wave_phase + t * self.wave_speed) > self.wave_threshold  # (rows, W)
        frame[self.horizon:] = np.minimum(self.sea + crest[..., None] * self.wave_gain, 255)

    def _ridge(self, base: float, height: float, peaks: int) -> np.ndarray:
        xs = np.linspace(0, self.w, peaks * 2 + 1)
        ys = np.empty_like(xs)
        ys[0::2] = base - self.rng.uniform(0.0, 0.3, peaks + 1) * height
        ys[1::2] = base - self.rng.uniform(0.6, 1.0, peaks) * height
        return np.interp(np.arange(self.w), xs, ys)  # (W,) row of the ridge per column

    def _fill_below(self, ridge: np.ndarray, colour, snowcap: float = 0.0) -> None:
        rows = np.arange(self.h, dtype=np.float32)[:, None]
        below = rows >= ridge[None, :]
        self.img[below] = self._lit(colour)
        if snowcap:
            cap = below & (rows < ridge[None, :] + snowcap)
            self.img[cap] = self._lit((240, 240, 245))

    def _mountains(self) -> None:
        h, hz = self.h, self.horizon
        snowy = self.spec.variant == "설산"
        far = (120, 130, 165) if snowy else (60, 120, 100)
        self._fill_below(self._ridge(hz - h * 0.08, h * 0.42, 3), far, snowcap=h * (0.13 if snowy else 0.0))
        self._fill_below(self._ridge(hz, h * 0.3, 4), (50, 110, 60), snowcap=h * (0.05 if snowy else 0.0))
        self._fill_below(np.full(self.w, hz + h * 0.06), (70, 140, 60))

    def _city(self) -> None:
        h, w, hz = self.h, self.w, self.horizon
        self.img[hz:] = self._lit((90, 90, 96))
        x = 0.0
        lit_share = {"밤": 0.7, "저녁": 0.5, "새벽": 0.35}.get(self.spec.time_of_day, 0.0)
        while x < w:
            high = self.spec.variant == "고층"
            bw = h * (self.rng.uniform(0.1, 0.18) if high else self.rng.uniform(0.16, 0.28))
            top = hz - h * (self.rng.uniform(0.4, 0.66) if high else self.rng.uniform(0.1, 0.22))
            shade = self.rng.uniform(70, 150)
            x0, x1, y0 = int(x), int(min(x + bw, w)), int(top)
            self.img[y0:hz, x0:x1] = self._lit((shade, shade, shade + 12))
            # Windows: a grid of small squares, yellow when lit, sky-blue glass by day.
            step = max(h * 0.05, 3.0)
            for wy in np.arange(y0 + step * 0.5, hz - step * 0.8, step):
                for wx in np.arange(x0 + step * 0.4, x1 - step * 0.6, step):
                    on = self.rng.random() < lit_share
                    colour = (255, 220, 110) if on else self._lit((150, 190, 230)) * 0.8
                    self.img[int(wy):int(wy + step * 0.5), int(wx):int(wx + step * 0.45)] = colour
            x += bw + h * self.rng.uniform(0.0, 0.04)
        self._road()

    def _road(self) -> None:
        h, w = self.h, self.w
        y0, y1 = int(h * ROAD[0]), int(h * ROAD[1])
        self.img[y0:y1] = self._lit((60, 60, 64))
        mid = (y0 + y1) // 2
        dash = max(int(h * 0.06), 2)
        for x in range(0, w, dash * 2):
            self.img[mid: mid + max(1, h // 90), x: x + dash] = self._lit((235, 235, 200))

    def _field(self) -> None:
        h, w, hz = self.h, self.w, self.horizon
        rows = np.arange(hz, h)
        stripes = ((np.sqrt(rows - hz + 1.0) * 2.2).astype(int) % 2)[:, None]  # bands widen nearer
        if self.spec.variant == "황금":
            green_a, green_b = self._lit((205, 165, 45)), self._lit((230, 195, 80))
        else:
            green_a, green_b = self._lit((70, 160, 50)), self._lit((100, 185, 70))
        self.img[hz:] = np.where(stripes[..., None] == 0, green_a, green_b)
        for _ in range(5):  # trees on the horizon
            tx = self.rng.uniform(0, w)
            self.img[int(hz - h * 0.05):hz + 1, int(tx - h * 0.008):int(tx + h * 0.008) + 1] = self._lit((90, 60, 30))
            self._disc(tx, hz - h * 0.07, h * 0.045, self._lit((30, 90, 35)))
        self._road()


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

    def __init__(self, world: _World):
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


def _view(motion: str, t: float, world: _World) -> tuple[float, float, float, float]:
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
    world = _World(spec, size)
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
