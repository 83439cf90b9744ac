"""What a synthetic scene is: its attributes (the ground truth) and how they are drawn at random.

Every clip is one `SceneSpec`. The renderer draws the spec and the caption grammar writes about
the same spec, so the words in a caption are exactly what the pixels show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Attribute values, in the words the captions and the `attributes` field use.
TIMES_OF_DAY = ("새벽", "아침", "낮", "저녁", "밤")
SCENES = ("바다", "산", "도시", "들판")
WEATHERS = ("맑음", "흐림", "비", "눈")
MOTIONS = ("고정", "왼쪽 패닝", "오른쪽 패닝", "줌인", "줌아웃")
OBJECTS = ("새", "자동차", "배", "구름", "없음")
DIRECTIONS = ("왼쪽", "오른쪽", "없음")
# A second, visible look for each scene (calm or rough sea, snowy or green peaks, high-rise or
# low-rise city, green or golden field).
VARIANTS: dict[str, tuple[str, ...]] = {
    "바다": ("잔잔함", "거침"),
    "산": ("설산", "푸름"),
    "도시": ("고층", "저층"),
    "들판": ("초록", "황금"),
}
# How many moving things of each kind may be drawn, and the colours a kind may have.
COUNTS: dict[str, tuple[int, ...]] = {"새": (2, 3, 4, 5), "자동차": (1, 2, 3), "배": (1, 2), "구름": (1, 2), "없음": (0,)}
COLORS: dict[str, tuple[str, ...]] = {"자동차": ("빨간", "노란", "파란", "하얀"), "배": ("하얀", "빨간", "노란")}

# The attribute keys of `SceneSpec.attributes()` and their possible values.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "time_of_day": TIMES_OF_DAY,
    "scene": SCENES,
    "weather": WEATHERS,
    "motion": MOTIONS,
    "objects": OBJECTS,
    "direction": DIRECTIONS,
    "variant": tuple(v for values in VARIANTS.values() for v in values),
    "count": tuple(sorted({n for values in COUNTS.values() for n in values})),
    "color": tuple(sorted({c for values in COLORS.values() for c in values})) + ("없음",),
}

# Moving things that belong in a scene: boats need water, cars need a road.
OBJECTS_FOR_SCENE: dict[str, tuple[str, ...]] = {
    "바다": ("새", "배", "구름", "없음"),
    "산": ("새", "구름", "없음"),
    "도시": ("새", "자동차", "구름", "없음"),
    "들판": ("새", "자동차", "구름", "없음"),
}
# A single white cloud drifting only reads as such under a sky without rain or snow.
CLOUD_WEATHERS = ("맑음", "흐림")


@dataclass(frozen=True)
class SceneSpec:
    """One synthetic clip's ground truth, plus the seed for its layout details."""

    time_of_day: str
    scene: str
    weather: str
    motion: str
    objects: str
    """The kind of moving thing (several of a kind may be drawn), or `없음`."""
    direction: str
    """Where the moving things go across the scene: `왼쪽`, `오른쪽`, or `없음` with no objects."""
    variant: str
    """The scene's second look (`VARIANTS[scene]`)."""
    count: int
    """How many moving things are drawn (0 with none)."""
    color: str
    """Their colour for cars and boats, else `없음`."""
    layout_seed: int
    """Seeds the drawing details (peaks, buildings, stars, rain) that no caption mentions."""

    def __post_init__(self) -> None:
        for key in ("time_of_day", "scene", "weather", "motion", "objects", "direction"):
            values = ATTRIBUTE_VALUES[key]
            if getattr(self, key) not in values:
                raise ValueError(f"{key} {getattr(self, key)!r} is not one of {', '.join(values)}")
        if (self.objects == "없음") != (self.direction == "없음"):
            raise ValueError(f"direction {self.direction!r} does not fit objects {self.objects!r}")
        if self.variant not in VARIANTS[self.scene]:
            raise ValueError(f"variant {self.variant!r} is not one of {', '.join(VARIANTS[self.scene])} for {self.scene}")
        if self.count not in COUNTS[self.objects]:
            raise ValueError(f"count {self.count} does not fit objects {self.objects!r}")
        if self.color not in COLORS.get(self.objects, ("없음",)):
            raise ValueError(f"color {self.color!r} does not fit objects {self.objects!r}")

    def attributes(self) -> dict[str, str | int]:
        """The ground truth as stored in the manifest's `attributes` field."""
        data = asdict(self)
        del data["layout_seed"]
        return data


def sample_scene(rng: np.random.Generator) -> SceneSpec:
    """Draw a scene: time, scene, weather and camera uniformly; objects among those that fit."""
    time_of_day = TIMES_OF_DAY[rng.integers(len(TIMES_OF_DAY))]
    scene = SCENES[rng.integers(len(SCENES))]
    weather = WEATHERS[rng.integers(len(WEATHERS))]
    motion = MOTIONS[rng.integers(len(MOTIONS))]
    choices = [o for o in OBJECTS_FOR_SCENE[scene] if o != "구름" or weather in CLOUD_WEATHERS]
    objects = choices[rng.integers(len(choices))]
    direction = "없음" if objects == "없음" else ("왼쪽", "오른쪽")[rng.integers(2)]
    variant = VARIANTS[scene][rng.integers(len(VARIANTS[scene]))]
    count = COUNTS[objects][rng.integers(len(COUNTS[objects]))]
    colors = COLORS.get(objects, ("없음",))
    color = colors[rng.integers(len(colors))]
    return SceneSpec(time_of_day, scene, weather, motion, objects, direction, variant, int(count), color, int(rng.integers(2**31)))
