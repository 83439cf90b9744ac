"""The static world a synthetic clip is cut from, drawn once with numpy: the sky gradient and its
light by time of day, sun or moon and stars, grey overcast, and below the horizon the sea (with
its waves, animated per frame), mountains, city blocks with lit windows, or a green field, with a
road in the city and the field. kvcap.data.synth.renderer moves the camera and the objects over it.
"""

from __future__ import annotations

import numpy as np

from kvcap.data.synth.scenes import SceneSpec

WORLD_WIDTH = 1.5  # world width in view widths: room for a pan of half a view
SUPERSAMPLE = 1.5  # world pixels per output pixel, so zoomed views stay sharp

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

def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


class World:
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
