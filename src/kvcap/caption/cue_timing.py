"""Timing for broadcast-style cues: each segment's caption spread over consecutive cues inside the
segment's span, each cue's time in proportion to its text's width.

    segments, overflow = broadcast_segments(segments, style, fps)

Everything is computed in whole milliseconds (what SRT and WebVTT carry), so the rules hold
after the writers round: durations between `min_cue_seconds` and `max_cue_seconds`, and at
least `min_gap_frames` frames (at the clip's frame rate, rounded up to a millisecond) between
any two cues, also across segments.

Where the span allows, durations are the proportional shares of the span (less the gaps), a
share under the minimum lifted to it (taking the time from the others) and one over the maximum
cut to it; time left over (short text in a long span) becomes equal blanks after each cue, so the
cues spread over the segment. Where the span is
too short for the preferred cut, the caption is cut again filling each cue (fewest cues); if
still too short, no word is dropped: the cues keep their layout and share the span in
proportion, shorter than the minimum (and with smaller gaps, or as one cue, when even a
millisecond each does not fit). Those cues are the `overflow` count.
"""

from __future__ import annotations

import math
from typing import Sequence

from kvcap.caption.subtitles import SubtitleStyle, layout_cues, text_width
from kvcap.caption.writers import Segment

DEFAULT_FPS = 24.0  # when the clip's rate is unknown: the lowest common rate gives the widest gap


def gap_ms(style: SubtitleStyle, fps: float | None) -> int:
    """`min_gap_frames` frames at `fps`, in whole milliseconds (rounded up)."""
    rate = fps if fps and fps > 0 and math.isfinite(fps) else DEFAULT_FPS
    return math.ceil(style.min_gap_frames * 1000 / rate - 1e-9)


def _clamped_shares(weights: list[float], total: float, low: int, high: int) -> list[float]:
    """Shares of `total` in proportion to `weights`, none under `low` (a share lifted to `low`
    takes its time from the others, which stay in proportion) and none over `high` (the time cut
    off is left blank: a short cue is not stretched to fill a long span)."""
    lifted: set[int] = set()
    while True:
        free = [i for i in range(len(weights)) if i not in lifted]
        rate = (total - low * len(lifted)) / (sum(weights[i] for i in free) or 1.0)  # ms per unit of width
        under = [i for i in free if rate * weights[i] < low]
        if not under:
            return [low if i in lifted else min(high, rate * weights[i]) for i in range(len(weights))]
        lifted.update(under)


def _proportional_ms(weights: list[float], total: int) -> list[int]:
    """Whole-millisecond durations, at least 1 each, summing to `total` (>= len(weights))."""
    spare = total - len(weights)
    weight = sum(weights) or 1.0
    cumulative, edges = 0.0, [0]
    for w in weights:
        cumulative += w
        edges.append(round(spare * cumulative / weight))
    return [1 + b - a for a, b in zip(edges, edges[1:])]


def _fitting_times(weights: list[float], start: int, span: int, gap: int, low: int, high: int) -> list[tuple[int, int]]:
    """(start, end) per cue when n * low + (n - 1) * gap <= span."""
    n = len(weights)
    available = span - (n - 1) * gap
    shares = _clamped_shares(weights, available, low, high)
    # Rounded at the running sum: whole ms summing to the total, each within [low, high] (integer bounds).
    edges = [round(sum(shares[:i])) for i in range(n + 1)]
    durations = [b - a for a, b in zip(edges, edges[1:])]
    blank = (available - sum(durations)) // n  # left over: equal blanks after each cue
    times, t = [], start
    for d in durations:
        times.append((t, t + d))
        t += d + gap + blank
    return times


def _cramped_times(weights: list[float], start: int, span: int, gap: int) -> list[tuple[int, int]]:
    """(start, end) per cue, in proportion, when the minimum duration does not fit; gaps shrink
    when even a millisecond per cue does not fit (the caller merges cues when span < n)."""
    n = len(weights)
    if n > 1 and span - (n - 1) * gap < n:
        gap = max(0, (span - n) // (n - 1))
    times, t = [], start
    for d in _proportional_ms(weights, span - (n - 1) * gap):
        times.append((t, t + d))
        t += d + gap
    return times


def segment_cues(text: str, start: int, end: int, style: SubtitleStyle, gap: int) -> tuple[list[Segment], int]:
    """One segment's caption as timed cues within [start, end] ms -> (cues, how many overflow)."""
    low = math.ceil(style.min_cue_seconds * 1000 - 1e-9)
    high = math.floor(style.max_cue_seconds * 1000 + 1e-9)
    span = max(0, end - start)

    def fits(n: int) -> bool:
        return n * low + (n - 1) * gap <= span

    cues = layout_cues(text, style)
    if not fits(len(cues)):
        cues = layout_cues(text, style, tight=True)
    overflow = 0 if fits(len(cues)) else len(cues)
    if overflow and span < len(cues):  # not a millisecond each: keep every word in one cue
        cues = [tuple(line for cue in cues for line in cue)]
        overflow = 1
    if not cues:
        return [], 0
    weights = [text_width(" ".join(lines)) for lines in cues]
    times = (_cramped_times(weights, start, span, gap) if overflow
             else _fitting_times(weights, start, span, gap, low, high))
    return [Segment(a / 1000, b / 1000, "\n".join(lines)) for (a, b), lines in zip(times, cues)], overflow


def overflow_note(count: int) -> str:
    """The one line `kvcap caption` ends with when some cues overflow."""
    cues = "1 subtitle cue is" if count == 1 else f"{count} subtitle cues are"
    return (f"{cues} shorter than subtitle.min_cue_seconds: their segments are too short for their text "
            "(every word kept; counted in job.json as subtitle_overflow)")


def broadcast_segments(segments: Sequence[Segment], style: SubtitleStyle, fps: float | None) -> tuple[list[Segment], int]:
    """Every segment's caption as broadcast-style cues, in time order -> (cues, overflow count).

    A segment's cues end `gap` before the next segment starts, so the gap also holds between
    segments. Segments with no text are skipped, as the writers skip them. Times are whole
    milliseconds (seconds with three decimals), which the writers keep exactly.
    """
    from kvcap.caption.writers import cues as segment_level_cues

    gap = gap_ms(style, fps)
    # The writers' own cues: validated, rounded to milliseconds, lines cleaned, empty ones skipped.
    timed = [(cue.start_ms, cue.end_ms, " ".join(cue.lines)) for cue in segment_level_cues(segments)]
    out: list[Segment] = []
    overflow = 0
    for index, (start, end, text) in enumerate(timed):
        if index + 1 < len(timed):
            next_start = timed[index + 1][0]
            # End `gap` before the next segment; where that leaves nothing, end at it (counted below).
            end = min(end, next_start - gap) if next_start - gap > start else max(start, min(end, next_start))
        cues, cramped = segment_cues(text, start, end, style, gap)
        out.extend(cues)
        overflow += cramped
    return out, overflow
