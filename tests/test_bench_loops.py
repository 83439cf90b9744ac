"""bench/loops.py (issue 26): the `suspect` mark catches the demo model's looping captions and
leaves its normal ones alone, on a few held-out clips; the independent looping rule itself."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from loops import caption_clips, is_looping, measure  # noqa: E402


def test_the_looping_rule_is_a_run_of_three_words_three_times():
    assert is_looping("비가 내리고 있다. 비가 내리고 있다. 비가 내리고 있다.")
    assert is_looping("새가 난다 하늘 새가 난다 하늘 위로 새가 난다 하늘")  # not back to back
    assert not is_looping("비가 내리고 있다. 비가 내리고 있다.")  # twice
    assert not is_looping("하늘 바다 하늘 바다 하늘 바다")  # each 3-word run twice
    assert is_looping("하늘 바다 하늘 바다 하늘 바다 하늘 바다")


@pytest.mark.slow
def test_forced_loops_are_marked_and_normal_captions_are_not():
    captions = caption_clips(6, batch=6)
    assert sum(is_looping(text) for text, _ in captions["forced"]) >= 5  # the forcing loops
    assert not any(is_looping(text) for text, _ in captions["normal"])
    caught, false, looping, normal = measure(captions, 2.4, -1.0)
    assert looping >= 5 and normal == 6
    assert caught >= 0.8 and false == 0.0
    # the mark is what catches them: with the checks off nothing is marked
    assert measure(captions, 1000.0, -1000.0)[:2] == (0.0, 0.0)
