"""The collapse alarm: no alarm on a non-change; a near-copy floor that ignores the references."""

from __future__ import annotations

from kvcap.config import ScoreConfig
from kvcap.metrics import score_predictions
from kvcap.metrics.collapse import collapse_reasons, near_copy_share

from metrics_helpers import captions

BASE = "흐린 해 질 녘 의 정상 이 하얗게 빛나는 산 풍경 이다 회색 구름 이 하늘 을 덮고 있다".split()
SCENES = ["바다", "도시", "숲", "사막", "강", "설원", "호수", "들판"]
WEATHER = ["맑음", "비", "눈", "안개", "흐림"]
MOTION = ["고정", "왼쪽 이동", "오른쪽 이동", "줌인", "줌아웃"]


def _near_copies(n: int) -> list[str]:
    """One caption with a single word changed per copy: a collapsed model's output."""
    out = []
    for i in range(n):
        words = list(BASE)
        words[i % len(words)] = words[i % len(words)] + str(i % 5)
        out.append(" ".join(words))
    return out


def _templated(n: int, offset: int = 0) -> list[str]:
    """Templated captions that say different things (synthetic references look like this)."""
    return [f"{SCENES[(i + offset) % 8]} 풍경 이다 날씨 는 {WEATHER[(i * 3 + offset) % 5]} 이다 "
            f"카메라 는 {MOTION[(i * 7 + offset) % 5]} 이다 새 {i % 4 + 1} 마리 가 보인다" for i in range(n)]


def test_no_alarm_on_equal_numbers():
    same = {"siglip": 0.0, "diversity": 0.59, "n": 10, "unique_ratio": 1.0}
    assert collapse_reasons(same, {"summary": dict(same)}) == []
    assert collapse_reasons({**same, "siglip": 0.0004}, {"summary": same}) == []  # below what is printed
    assert collapse_reasons({**same, "siglip": 0.05, "diversity": 0.50}, {"summary": same})  # a real move


def test_near_copies_alarm_even_when_references_are_templated():
    n = 40
    refs = {f"c{i}": [t] for i, t in enumerate(_templated(n))}
    cfg = ScoreConfig(metrics=["meteor", "diversity"], tokenizer="whitespace")
    collapsed = score_predictions({f"c{i}": t for i, t in enumerate(_near_copies(n))}, refs, cfg,
                                  token_cache=None).summary
    # the reference-relative rule alone stays silent: the references are not diverse either
    assert collapsed["diversity"] >= 0.5 * collapsed["ref_diversity"]
    assert collapsed["unique_ratio"] == 1.0
    assert collapsed["collapse"] and any("near-copies" in r for r in collapsed["collapse_reasons"])
    varied = captions(n, seed=5)  # different sentences per clip: no near-copies, no alarm
    honest = score_predictions({f"c{i}": t for i, t in enumerate(varied)}, refs, cfg, token_cache=None).summary
    assert honest["near_copy_share"] < 0.5 and not honest["collapse"], honest["collapse_reasons"]


def test_near_copy_share_counts_each_caption_once_across_pools():
    tokens = [t.split() for t in _near_copies(5)] + [t.split() for t in _templated(1)]
    assert near_copy_share(tokens, pool=5) == 5 / 6  # the lone last caption joins the pool before
    assert near_copy_share([["하나"]]) is None
