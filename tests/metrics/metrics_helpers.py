"""Programmatic Korean caption text for the metric tests (deterministic per seed)."""

from __future__ import annotations

import random

NOUNS = ["바다", "하늘", "산", "구름", "도시", "거리", "나무", "파도", "노을", "자동차", "사람", "강", "다리", "햇빛", "안개", "눈"]
ADJECTIVES = ["푸른", "맑은", "붉은", "조용한", "넓은", "높은", "흐린", "밝은", "어두운", "작은"]
SUBJECT = ["이", "가"]          # chosen by the noun's final consonant below
OBJECT = ["을", "를"]
VERBS = ["보인다", "흐른다", "움직인다", "빛난다", "펼쳐진다", "지나간다", "흔들린다", "내린다"]
ADVERBS = ["천천히", "멀리", "조용히", "빠르게", "가득", "아래로"]


def _has_final(noun: str) -> bool:
    return (ord(noun[-1]) - 0xAC00) % 28 != 0


def sentence(rng: random.Random) -> str:
    subject, obj = rng.choice(NOUNS), rng.choice(NOUNS)
    s_particle = SUBJECT[0] if _has_final(subject) else SUBJECT[1]
    o_particle = OBJECT[0] if _has_final(obj) else OBJECT[1]
    pattern = rng.randrange(3)
    if pattern == 0:
        return f"{rng.choice(ADJECTIVES)} {subject}{s_particle} {rng.choice(ADVERBS)} {rng.choice(VERBS)}."
    if pattern == 1:
        return f"{subject}{s_particle} {rng.choice(ADJECTIVES)} {obj}{o_particle} 비춘다."
    return f"{rng.choice(ADVERBS)} {rng.choice(ADJECTIVES)} {subject}{s_particle} {rng.choice(VERBS)}."


def caption(rng: random.Random, sentences: tuple[int, int] = (1, 4)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def captions(count: int, seed: int = 0, sentences: tuple[int, int] = (1, 4)) -> list[str]:
    rng = random.Random(seed)
    return [caption(rng, sentences) for _ in range(count)]
