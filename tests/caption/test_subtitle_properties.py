"""Property tests (hypothesis) of broadcast-style cues over generated Korean captions mixed with
Latin words and digits, on spans from a few frames to a minute, at common frame rates.

The checks use their own width rule (unicodedata's East Asian Width) and their own count of the
fewest cues a caption needs (greedy wrap of the whole caption, lines grouped by `max_lines`), so
"the span allows" is decided without the code under test.
"""

from __future__ import annotations

import math
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvcap.caption.cue_timing import broadcast_segments
from kvcap.caption.subtitles import SubtitleStyle
from kvcap.caption.writers import Segment

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HANGUL = st.integers(0xAC00, 0xD7A3).map(chr)
LATIN = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
DIGIT = st.sampled_from("0123456789")
PUNCT = st.sampled_from([".", ",", "?", "!", "%", "-", ":", "…", '."'])


@st.composite
def words(draw) -> str:
    kind = draw(st.sampled_from(["hangul", "hangul", "hangul", "latin", "digits", "mixed", "long"]))
    if kind == "long":  # wider than any line: must stand alone, whole
        word = "".join(draw(st.lists(HANGUL, min_size=17, max_size=30)))
    elif kind == "mixed":  # 3대의, GPS로, 37.5N
        word = draw(st.text(st.one_of(HANGUL, LATIN, DIGIT), min_size=1, max_size=8))
    else:
        alphabet = {"hangul": HANGUL, "latin": LATIN, "digits": DIGIT}[kind]
        word = draw(st.text(alphabet, min_size=1, max_size=7))
    if draw(st.integers(0, 5)) == 0:
        word += draw(PUNCT)
    return word


captions = st.lists(words(), min_size=1, max_size=45).map(" ".join)
fps_values = st.sampled_from([8.0, 23.976, 24.0, 25.0, 29.97, 30.0, 60.0, None])
styles = st.builds(
    SubtitleStyle,
    max_line_chars=st.sampled_from([16, 16, 16, 8, 12, 20]),
    max_lines=st.sampled_from([2, 2, 1, 3]),
)


@st.composite
def timelines(draw) -> list[Segment]:
    """1-4 segments in time order with spans of 0.05-60 s, back to back or with blanks between."""
    t = draw(st.integers(0, 5000)) / 1000
    segments = []
    for _ in range(draw(st.integers(1, 4))):
        span = draw(st.sampled_from([0.05, 0.3, 1.0, 2.0, 5.0, 8.0, 20.0, 30.0, 60.0]))
        span *= draw(st.floats(0.8, 1.25))
        end = round(t + span, 3)
        segments.append(Segment(t, end, draw(captions)))
        t = round(end + draw(st.sampled_from([0.0, 0.0, 0.03, 1.0])), 3)
    return segments


def own_width(text: str) -> float:
    """The rule, written again: East Asian wide/fullwidth 1 unit, combining marks 0, the rest 1/2."""
    return sum(0 if unicodedata.combining(c) else 1 if unicodedata.east_asian_width(c) in "WF" else 0.5 for c in text)


def fewest_cues(text: str, style: SubtitleStyle) -> int:
    """Greedy wrap of the whole caption (the fewest lines), grouped into cues of max_lines."""
    lines, current = 0, None
    for word in text.split():
        if current is not None and current + 0.5 + own_width(word) <= style.max_line_chars:
            current += 0.5 + own_width(word)
        else:
            lines, current = lines + 1, own_width(word)
    return math.ceil(lines / style.max_lines)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def gap_for(fps: float | None, style: SubtitleStyle) -> int:
    return math.ceil(style.min_gap_frames * 1000 / (fps or 24.0) - 1e-9)


def owner(cue: Segment, segments: list[Segment]) -> int:
    """The segment a cue lies in (segments are in time order and do not overlap)."""
    return max(i for i, s in enumerate(segments) if ms(s.start) <= ms(cue.start))


@EXAMPLES
@given(segments=timelines(), style=styles, fps=fps_values)
def test_every_word_is_kept_in_order_and_never_cut(segments, style, fps):
    cues, _ = broadcast_segments(segments, style, fps)
    assert [w for c in cues for line in c.text.splitlines() for w in line.split()] == [
        w for s in segments for w in s.text.split()]
    squeeze = "".join  # the caption, ignoring line breaks and whitespace
    assert squeeze("".join(c.text.split()) for c in cues) == squeeze("".join(s.text.split()) for s in segments)


@EXAMPLES
@given(segments=timelines(), style=styles, fps=fps_values)
def test_every_line_fits_except_a_lone_over_long_word(segments, style, fps):
    cues, _ = broadcast_segments(segments, style, fps)
    for cue in cues:
        for line in cue.text.splitlines():
            assert own_width(line) <= style.max_line_chars or len(line.split()) == 1, line


@EXAMPLES
@given(segments=timelines(), style=styles, fps=fps_values)
def test_cues_never_overlap_and_stay_inside_their_segment(segments, style, fps):
    cues, _ = broadcast_segments(segments, style, fps)
    for a, b in zip(cues, cues[1:]):
        assert ms(b.start) >= ms(a.end)
    for cue in cues:
        segment = segments[owner(cue, segments)]
        assert ms(segment.start) <= ms(cue.start) < ms(cue.end) <= ms(segment.end)


@EXAMPLES
@given(segments=timelines(), style=styles, fps=fps_values)
def test_durations_lines_and_gaps_hold_wherever_the_span_allows(segments, style, fps):
    cues, overflow = broadcast_segments(segments, style, fps)
    gap, low, high = gap_for(fps, style), math.ceil(style.min_cue_seconds * 1000), math.floor(style.max_cue_seconds * 1000)
    cramped = 0
    for i, segment in enumerate(segments):
        mine = [c for c in cues if owner(c, segments) == i]
        end = ms(segment.end) if i + 1 == len(segments) else min(ms(segment.end), ms(segments[i + 1].start) - gap)
        need = fewest_cues(segment.text, style)
        if need * low + (need - 1) * gap <= end - ms(segment.start):  # the span allows
            assert all(low <= ms(c.end) - ms(c.start) <= high for c in mine)
            assert all(ms(b.start) - ms(a.end) >= gap for a, b in zip(mine, mine[1:]))
            assert all(len(c.text.splitlines()) <= style.max_lines for c in mine)
            if i + 1 < len(segments):
                assert ms(segments[i + 1].start) - ms(mine[-1].end) >= gap
        else:
            cramped += len(mine)
    assert overflow == cramped  # the cues of every span too short for its text, and only those
