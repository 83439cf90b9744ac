"""Korean captions written from a scene's attributes, and read back from any caption.

A caption is a few sentences: the setting (time of day + scene, sometimes with the weather),
the weather, the moving things and their direction, the camera, and up to two optional detail
sentences, with the order of the middle sentences shuffled. Each attribute value has two to
four phrasings, so references vary (their own 1 - self-BLEU-4 stays well above zero) while
every caption still names every attribute in words a small model can learn.

`attribute_words()` lists, for every attribute value, the marker phrases its phrasings always
contain; `parse_attributes` finds them in a caption (a generated one included), which is how
the demo measures attribute accuracy.
"""

from __future__ import annotations

import copy

import numpy as np

from kvcap.data.synth.scenes import ATTRIBUTE_VALUES, SceneSpec, sample_scene

# --- surface forms -------------------------------------------------------------------------

TIME_NOUNS = {
    "새벽": ("새벽", "이른 새벽", "동틀 무렵"),
    "아침": ("아침", "이른 아침", "상쾌한 아침"),
    "낮": ("한낮", "대낮", "낮 시간"),
    "저녁": ("저녁", "해 질 녘", "노을 지는 저녁"),
    "밤": ("밤", "깊은 밤", "한밤중"),
}
SCENE_NOUNS = {
    "바다": ("바다", "바닷가", "넓은 바다"),
    "산": ("산", "산자락", "첩첩산중"),
    "도시": ("도시", "도심", "시가지"),
    "들판": ("들판", "초원", "벌판"),
}
# The scene's second look, as a modifier of the scene noun ("파도가 거친 바다").
VARIANT_ADJECTIVES = {
    "잔잔함": ("잔잔한", "물결이 고요한"),
    "거침": ("파도가 거친", "물결이 높은"),
    "설산": ("흰 봉우리가 솟은", "정상이 하얗게 빛나는"),
    "푸름": ("푸른 숲이 덮인", "초록 숲이 우거진"),
    "고층": ("고층 빌딩이 솟은", "높은 빌딩이 늘어선"),
    "저층": ("낮은 건물이 모인", "나지막한 건물이 늘어선"),
    "초록": ("초록빛", "푸르른"),
    "황금": ("황금빛", "누렇게 익은"),
}
# Weather as a modifier of the time noun ("비 내리는 밤") ...
WEATHER_ADJECTIVES = {
    "맑음": ("맑은", "맑게 갠", "쾌청한"),
    "흐림": ("흐린", "잔뜩 흐린", "우중충한"),
    "비": ("비 내리는", "비가 오는", "빗줄기가 쏟아지는"),
    "눈": ("눈 내리는", "눈이 오는", "함박눈이 쏟아지는"),
}
# ... or as a sentence of its own.
WEATHER_SENTENCES = {
    "맑음": ("날씨는 맑다.", "하늘이 맑게 개어 있다.", "쾌청한 날씨다."),
    "흐림": ("하늘이 잔뜩 흐려 있다.", "날씨가 흐리고 어둑하다.", "우중충하게 흐린 날씨다."),
    "비": ("비가 내리고 있다.", "굵은 빗줄기가 쏟아진다.", "비가 주룩주룩 내린다."),
    "눈": ("눈이 펑펑 내린다.", "하얀 눈발이 흩날린다.", "함박눈이 내리고 있다."),
}
# Moving things: "{colour} {noun} {number} {unit}" in one of two word orders.
OBJECT_NOUNS = {"새": ("새",), "자동차": ("자동차", "차량"), "배": ("배", "돛단배"), "구름": ("흰 구름", "뭉게구름")}
UNITS = {"새": "마리", "자동차": "대", "배": "척", "구름": "조각"}
NUMBER_WORDS = {1: "한", 2: "두", 3: "세", 4: "네", 5: "다섯"}
OBJECT_VERBS = {
    "새": ("날아간다.", "날아가고 있다.", "하늘을 가로질러 난다."),
    "자동차": ("달려간다.", "도로를 따라 달린다.", "지나간다."),
    "배": ("물 위를 지나간다.", "천천히 떠간다.", "항해하고 있다."),
    "구름": ("흘러간다.", "천천히 떠간다.", "하늘을 지나간다."),
}
DIRECTION_PHRASES = {
    "오른쪽": ("왼쪽에서 오른쪽으로", "오른쪽 방향으로"),
    "왼쪽": ("오른쪽에서 왼쪽으로", "왼쪽 방향으로"),
}
NO_OBJECT_SENTENCES = (
    "화면 속에 움직이는 것은 없다.",
    "지나가는 것 없이 고요하다.",
    "오가는 것 하나 없이 조용한 장면이다.",
)
CAMERA_SENTENCES = {
    "고정": ("카메라는 한자리에 고정되어 있다.", "고정된 카메라로 촬영되었다.", "카메라 움직임 없이 정지된 구도다."),
    "왼쪽 패닝": ("카메라가 왼쪽으로 천천히 패닝한다.", "시점이 왼쪽으로 이동하며 풍경을 훑는다.", "카메라가 왼쪽으로 움직이며 장면을 보여 준다."),
    "오른쪽 패닝": ("카메라가 오른쪽으로 천천히 패닝한다.", "시점이 오른쪽으로 이동하며 풍경을 훑는다.", "카메라가 오른쪽으로 움직이며 장면을 보여 준다."),
    "줌인": ("카메라가 서서히 줌인한다.", "화면이 점점 확대된다.", "카메라가 앞으로 다가가며 가까이 잡는다."),
    "줌아웃": ("카메라가 서서히 줌아웃한다.", "화면이 점점 축소된다.", "카메라가 뒤로 물러나며 넓게 잡는다."),
}
# Optional detail sentences. Sky details only hold under a clear sky (sun, stars, colours).
CLEAR_SKY_DETAILS = {
    "새벽": ("하늘이 보랏빛으로 밝아 온다.", "지평선 근처가 분홍빛으로 물들어 있다."),
    "아침": ("막 떠오른 해가 부드러운 빛을 던진다.", "하늘이 연한 하늘색으로 환하다."),
    "낮": ("해가 하늘 높이 떠 있다.", "하늘이 새파랗게 빛난다."),
    "저녁": ("하늘이 주황빛 노을로 물들었다.", "붉은 해가 지평선 쪽으로 기운다."),
    "밤": ("하늘에 별이 반짝인다.", "밝은 달이 떠 있다."),
}
SCENE_DETAILS = {
    "바다": ("멀리 수평선이 보인다.", "수평선이 하늘과 맞닿아 있다."),
    "산": ("봉우리가 겹겹이 이어져 있다.", "능선이 하늘과 맞닿아 있다."),
    "도시": ("크고 작은 건물들이 줄지어 서 있다.",),
    "들판": ("멀리 나무 몇 그루가 서 있다.",),
}
LIT_WINDOWS_DETAIL = "건물 창문마다 불이 켜져 있다."
WEATHER_DETAILS = {
    "맑음": ("시야가 탁 트여 있다.",),
    "흐림": ("회색 구름이 하늘을 덮고 있다.",),
    "비": ("화면 전체가 어둑하다.",),
    "눈": ("땅이 하얗게 덮여 있다.",),
}

# --- markers: what every phrasing of a value contains (used to read captions back) -------------

MARKERS: dict[str, dict[str, tuple[str, ...]]] = {
    "time_of_day": {
        "새벽": ("새벽", "동틀 무렵"),
        "아침": ("아침",),
        "낮": ("한낮", "대낮", "낮 시간"),
        "저녁": ("저녁", "해 질 녘"),
        "밤": ("밤",),
    },
    "scene": {
        "바다": ("바다", "바닷가"),
        "산": ("산",),
        "도시": ("도시", "도심", "시가지"),
        "들판": ("들판", "초원", "벌판"),
    },
    "weather": {
        "맑음": ("맑", "쾌청"),
        "흐림": ("흐린", "흐려", "흐리", "우중충"),
        "비": ("비 내리", "비가", "빗줄기"),
        "눈": ("눈 내리", "눈이", "눈발", "함박눈"),
    },
    "motion": {
        "고정": ("고정", "정지된"),
        "왼쪽 패닝": ("카메라가 왼쪽으로", "시점이 왼쪽으로", "왼쪽으로 패닝"),
        "오른쪽 패닝": ("카메라가 오른쪽으로", "시점이 오른쪽으로", "오른쪽으로 패닝"),
        "줌인": ("줌인", "확대", "다가가"),
        "줌아웃": ("줌아웃", "축소", "물러나"),
    },
    "objects": {
        "새": ("마리",),
        "자동차": ("자동차", "차량"),
        "배": ("척",),
        "구름": ("조각",),
        "없음": ("움직이는 것은 없", "지나가는 것 없이", "오가는 것 하나 없"),
    },
    "direction": {
        "오른쪽": ("왼쪽에서 오른쪽으로", "오른쪽 방향으로"),
        "왼쪽": ("오른쪽에서 왼쪽으로", "왼쪽 방향으로"),
    },
    "variant": {variant: words for variant, words in VARIANT_ADJECTIVES.items()},
    "count": {
        # the leading space keeps "우중충한 대낮" from reading as "한 대"
        n: tuple(f" {NUMBER_WORDS[n]} {unit}" for unit in UNITS.values()) for n in sorted(NUMBER_WORDS)
    },
    "color": {
        color: tuple(f"{color} {noun}" for noun in ("자동차", "차량", "배", "돛단배"))
        for color in ("빨간", "노란", "파란", "하얀")
    },
}
# Attributes that are absent (not "unknown") when a caption names no moving thing.
_ABSENT_WITHOUT_OBJECTS = {"direction": "없음", "count": 0, "color": "없음"}


def attribute_words() -> dict[str, dict[str | int, list[str]]]:
    """attribute -> value -> the phrases that name it in captions (every caption holds one)."""
    return {attr: {value: list(words) for value, words in values.items()} for attr, values in copy.deepcopy(MARKERS).items()}


def parse_attributes(caption: str) -> dict[str, str | int | None]:
    """Recover the attributes a caption names; None for an attribute it does not mention.

    For each attribute the value whose marker appears first wins (a longer marker wins a tie).
    A caption that says nothing moves reads as direction `없음`.
    """
    found: dict[str, str | int | None] = {}
    for attr, values in MARKERS.items():
        best: tuple[int, int, str | int] | None = None  # (position, -marker length, value)
        for value, markers in values.items():
            for marker in markers:
                pos = caption.find(marker)
                if pos >= 0 and (best is None or (pos, -len(marker)) < best[:2]):
                    best = (pos, -len(marker), value)
        found[attr] = best[2] if best else None
    if found["objects"] == "없음":
        for attr, absent in _ABSENT_WITHOUT_OBJECTS.items():
            if found[attr] is None:
                found[attr] = absent
    elif found["objects"] in ("새", "구름") and found["color"] is None:
        found["color"] = "없음"  # birds and clouds are not given a colour
    return found


# --- composing ---------------------------------------------------------------------------------


def _has_final_consonant(word: str) -> bool:
    last = word[-1]
    return "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0


def _particle(word: str, with_final: str, without_final: str) -> str:
    """Attach the particle form that fits the word's last syllable (이/가, 을/를 ...)."""
    return word + (with_final if _has_final_consonant(word) else without_final)


class _Wording:
    """Chooses among phrasings: by another *visible* attribute (the default), or at random.

    A captioner decodes greedily, so it can only reproduce wording that follows from what it
    sees. Grounded wording therefore picks each phrasing by the value of a named attribute of
    the same scene (e.g. the time-of-day word by the weather), which varies the captions
    across scenes as much as random wording does while staying learnable from the pixels.
    `paraphrase=True` picks at random instead (extra reference captions of one clip).
    """

    def __init__(self, spec: SceneSpec, rng: np.random.Generator, paraphrase: bool):
        self.values = spec.attributes()
        self.rng = rng
        self.paraphrase = paraphrase

    def index(self, n: int, *keys: str) -> int:
        """An index in range(n): from the values of attributes `keys`, or random."""
        if self.paraphrase:
            return int(self.rng.integers(n))
        position = 0
        for key in keys:
            values = ATTRIBUTE_VALUES[key]
            position = position * len(values) + values.index(self.values[key])
        return position % n

    def pick(self, options, *keys: str):
        return options[self.index(len(options), *keys)]


def _setting_sentence(spec: SceneSpec, words: _Wording, with_weather: bool) -> str:
    time = words.pick(TIME_NOUNS[spec.time_of_day], "weather")
    scene = f"{words.pick(VARIANT_ADJECTIVES[spec.variant], 'time_of_day')} {words.pick(SCENE_NOUNS[spec.scene], 'motion')}"
    if with_weather:
        weather = words.pick(WEATHER_ADJECTIVES[spec.weather], "scene")
        templates = (
            f"{weather} {time}의 {scene} 풍경이다.",
            f"{weather} {time}, {_particle(scene, '이', '가')} 펼쳐져 있다.",
            f"{weather} {time}에 {_particle(scene, '을', '를')} 담은 영상이다.",
        )
    else:
        templates = (
            f"{time}의 {scene} 풍경이다.",
            f"{time}, {_particle(scene, '이', '가')} 화면에 펼쳐져 있다.",
            f"{scene}의 {time} 모습을 담은 영상이다.",
            f"{time}에 바라본 {scene}의 모습이다.",
        )
    return words.pick(templates, "time_of_day")


def _object_sentence(spec: SceneSpec, words: _Wording) -> str:
    if spec.objects == "없음":
        return words.pick(NO_OBJECT_SENTENCES, "time_of_day")
    noun = words.pick(OBJECT_NOUNS[spec.objects], "count")
    if spec.color != "없음":
        noun = f"{spec.color} {noun}"
    counted = f"{NUMBER_WORDS[spec.count]} {UNITS[spec.objects]}"
    if words.index(2, "scene") == 0:
        subject = _particle(f"{noun} {counted}", "이", "가")  # "빨간 자동차 두 대가"
    else:
        subject = _particle(f"{counted}의 {noun}", "이", "가")  # "두 대의 빨간 자동차가"
    direction = words.pick(DIRECTION_PHRASES[spec.direction], "time_of_day")
    return f"{subject} {direction} {words.pick(OBJECT_VERBS[spec.objects], 'weather')}"


def _details(spec: SceneSpec) -> list[str]:
    """Detail sentences that are true of this scene (none of them names another value)."""
    details = list(SCENE_DETAILS[spec.scene]) + list(WEATHER_DETAILS[spec.weather])
    if spec.weather == "맑음":
        details += CLEAR_SKY_DETAILS[spec.time_of_day]
    if spec.scene == "도시" and spec.time_of_day in ("새벽", "저녁", "밤"):
        details.append(LIT_WINDOWS_DETAIL)
    return details


MAX_CHARS = 200


def compose_caption(spec: SceneSpec, rng: np.random.Generator, paraphrase: bool = False) -> str:
    """One Korean caption for `spec`.

    By default every choice of phrasing, sentence order and detail follows from the scene's
    own attributes (see `_Wording`), so a scene has one caption that a model can learn to
    write; `paraphrase=True` draws those choices from `rng` (other wordings of the same
    scene, e.g. extra references). Either way the caption names every attribute.
    """
    words = _Wording(spec, rng, paraphrase)
    with_weather = words.index(2, "motion") == 0
    setting = _setting_sentence(spec, words, with_weather)
    body = [_object_sentence(spec, words), words.pick(CAMERA_SENTENCES[spec.motion], "scene")]
    if not with_weather:
        body.append(words.pick(WEATHER_SENTENCES[spec.weather], "time_of_day"))
    pool = _details(spec)
    if paraphrase:
        n_details = int(rng.integers(1, 3))
        picked = [pool[i] for i in rng.permutation(len(pool))[:n_details]]
        body = [body[i] for i in rng.permutation(len(body))]
        for detail in picked:
            body.insert(int(rng.integers(len(body) + 1)), detail)
    else:
        picked = [words.pick(pool, "motion", "direction")]
        if words.index(2, "weather") == 1:
            body.reverse()
        body.insert(words.index(len(body) + 1, "time_of_day"), picked[0])
    sentences = [setting] + body
    # Keep captions short enough for a tiny LLM: drop details first if one ran long.
    while len(" ".join(sentences)) > MAX_CHARS and any(s in picked for s in sentences):
        sentences.remove(next(s for s in reversed(sentences) if s in picked))
    return " ".join(sentences)


def caption_corpus(n: int, seed: int = 0) -> list[str]:
    """`n` captions of random scenes, without rendering (e.g. to train a tokenizer)."""
    rng = np.random.default_rng([seed, 0xCA9])
    return [compose_caption(sample_scene(rng), rng) for _ in range(n)]
