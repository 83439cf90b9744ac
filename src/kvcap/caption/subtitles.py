"""Korean broadcast-style subtitle layout: a caption cut into cues of at most `max_lines` lines of
at most `max_line_chars` units (the Netflix Korean Timed Text Style Guide's 16 x 2).

    text_width("한글 ABC")          -> 3.5  (Hangul 1 unit; Latin, digits, spaces, punctuation 1/2)
    layout_cues("...", style)       -> [("line 1", "line 2"), ...]  one tuple of lines per cue

Breaks come at sentence ends first, then clause ends (a comma, or a Korean connective ending such
as -고, -며, -지만), then at any word (어절) boundary; never inside a word. A single word wider
than a line stands alone on its line. The words of the caption are kept exactly, in order: only
the whitespace between them changes. A sentence split across cues carries no ellipsis or dash.

The timing of the cues is kvcap.caption.cue_timing; the srt/vtt writers get the result through
`broadcast_segments` there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from kvcap.errors import KvcapError

CUE_STYLES = ("broadcast", "segment")

# A word that ends a sentence: ., ?, !, … (or their full-width forms), maybe inside closing quotes.
_SENTENCE_END = re.compile(r"[.?!…。？！]+[\"'”’)\]」』]*$")
# A word that ends a clause: a comma-like mark, or a Korean connective ending (연결 어미). The list
# is short on purpose: a false hit (a noun such as 창고) only makes a word boundary preferred.
_CLAUSE_END = re.compile(r"([,;:，、]|(고|며|으며|면서|지만|는데|은데|아서|어서|해서|니까|으나|거나))[\"'”’)\]」』]*$")

SENTENCE, CLAUSE, WORD = 3, 2, 1  # break strengths after a word, strongest first
LINE_BREAK_BONUS = 4.0  # units of line unevenness one step of break strength is worth


class SubtitleSettingsError(KvcapError, ValueError):
    """`[subtitle]` settings that cannot go together (one line naming the keys)."""


@dataclass(frozen=True)
class SubtitleStyle:
    """How srt/vtt cues are cut (the `[subtitle]` settings; kvcap.config.schema.SubtitleConfig)."""

    cue_style: Literal["broadcast", "segment"] = "broadcast"
    max_line_chars: int = 16
    max_lines: int = 2
    min_cue_seconds: float = 5 / 6
    max_cue_seconds: float = 7.0
    min_gap_frames: int = 2

    def __post_init__(self) -> None:
        if self.cue_style not in CUE_STYLES:
            raise SubtitleSettingsError(f"subtitle.cue_style must be one of {', '.join(CUE_STYLES)}, got {self.cue_style!r}")
        if self.max_line_chars < 1 or self.max_lines < 1:
            raise SubtitleSettingsError("subtitle.max_line_chars and subtitle.max_lines must be at least 1")
        if not 0 <= self.min_cue_seconds <= self.max_cue_seconds or self.max_cue_seconds <= 0:
            raise SubtitleSettingsError(f"subtitle.min_cue_seconds ({self.min_cue_seconds}) must be at most "
                             f"subtitle.max_cue_seconds ({self.max_cue_seconds}), which must be above 0")
        if self.min_gap_frames < 0:
            raise SubtitleSettingsError(f"subtitle.min_gap_frames must be 0 or more, got {self.min_gap_frames}")

    @classmethod
    def from_config(cls, subtitle: object) -> "SubtitleStyle":
        """From the config's `[subtitle]` table (or anything with the same attributes)."""
        if isinstance(subtitle, SubtitleStyle):
            return subtitle
        return cls(**{name: getattr(subtitle, name) for name in cls.__dataclass_fields__})


@lru_cache(maxsize=4096)
def _char_units(char: str) -> float:
    from rich.cells import cell_len

    return cell_len(char) / 2


def text_width(text: str) -> float:
    """Width of `text` in subtitle units: a Hangul syllable (or jamo, or CJK ideograph: any
    East Asian wide character) is 1; Latin letters, digits, spaces and punctuation are 1/2;
    combining marks 0.

    Terminal cell widths (East Asian Width, through `rich.cells`, a dependency already) are
    exactly twice these units: wide characters take two cells, the rest one.
    """
    return sum(_char_units(char) for char in text)


def break_strength(word: str) -> int:
    """How good a place the boundary after `word` is for a break: SENTENCE, CLAUSE or WORD."""
    if _SENTENCE_END.search(word):
        return SENTENCE
    if _CLAUSE_END.search(word):
        return CLAUSE
    return WORD


def _joined_width(words: list[str]) -> float:
    return sum(text_width(w) for w in words) + 0.5 * max(0, len(words) - 1)  # a space is 1/2


def wrap_lines(words: list[str], width: float) -> list[list[str]]:
    """Greedy word wrap at `width` units; a word wider than `width` gets a line of its own."""
    lines: list[list[str]] = []
    current: list[str] = []
    for word in words:
        if current and _joined_width(current + [word]) > width:
            lines.append(current)
            current = []
        current.append(word)
    if current:
        lines.append(current)
    return lines


def _two_lines(words: list[str], width: float) -> list[list[str]]:
    """The best place to cut a two-line cue: both lines fit (or the cut isolates an over-long word),
    the lines as even as may be, a stronger break preferred (a false clause hit such as 크고 in
    "크고 작은" must not leave one word on a line)."""
    best, best_key = None, None
    for cut in range(1, len(words)):
        top, bottom = words[:cut], words[cut:]
        if any(_joined_width(line) > width and len(line) > 1 for line in (top, bottom)):
            continue
        # Even lines, but a clause end is worth 4 units of unevenness and a sentence end 8.
        key = abs(_joined_width(top) - _joined_width(bottom)) - LINE_BREAK_BONUS * (break_strength(words[cut - 1]) - WORD)
        if best_key is None or key < best_key:
            best, best_key = [top, bottom], key
    return best if best is not None else wrap_lines(words, width)


def cue_lines(words: list[str], style: SubtitleStyle) -> list[list[str]]:
    """A cue's words as lines: greedy wrap, and for two lines the best cut between them."""
    lines = wrap_lines(words, style.max_line_chars)
    if len(lines) == 2:
        return _two_lines(words, style.max_line_chars)
    return lines


def _fits(words: list[str], style: SubtitleStyle) -> bool:
    return len(wrap_lines(words, style.max_line_chars)) <= style.max_lines


def _pieces(words: list[str], strengths: list[int], level: int) -> list[tuple[list[str], list[int]]]:
    """`words` cut after every word whose break is at least `level` (the last word aside)."""
    pieces, start = [], 0
    for i in range(len(words) - 1):
        if strengths[i] >= level:
            pieces.append((words[start:i + 1], strengths[start:i + 1]))
            start = i + 1
    pieces.append((words[start:], strengths[start:]))
    return pieces


def _joinable(current: list[str], piece: list[str], level: int, style: SubtitleStyle) -> bool:
    """May `piece` share a cue with `current`? It must fit; a new sentence must also start on a
    line of its own (each laid out alone, their lines together within `max_lines`)."""
    if level == SENTENCE:
        lines = len(wrap_lines(current, style.max_line_chars)) + len(wrap_lines(piece, style.max_line_chars))
        return lines <= style.max_lines
    return _fits(current + piece, style)


def pack_words(words: list[str], strengths: list[int], style: SubtitleStyle, levels=(SENTENCE, CLAUSE, WORD)) -> list[list[str]]:
    """`words` grouped into cues that fit, cutting at the strongest breaks first: the pieces
    between breaks of the first level are joined while the joined cue still fits (sentences
    only when each starts on its own line), and a piece
    that does not fit alone is cut again at the next level. A single word always fits (it
    stands alone on a line), so this ends."""
    if not levels or (levels[0] != SENTENCE and _fits(words, style)):  # sentences: see _joinable
        return [words]
    level, rest = levels[0], levels[1:]
    cues: list[list[str]] = []
    current: list[str] = []
    for piece, piece_strengths in _pieces(words, strengths, level):
        if current and _joinable(current, piece, level, style):
            current = current + piece
            continue
        if current:
            cues.append(current)
            current = []
        if _fits(piece, style):
            current = piece
        else:
            cues.extend(pack_words(piece, piece_strengths, style, rest))
    if current:
        cues.append(current)
    return cues


def layout_cues(text: str, style: SubtitleStyle, *, tight: bool = False) -> list[tuple[str, ...]]:
    """`text` as cues of lines. `tight` fills each cue at word breaks, ignoring sentences and
    clauses: the fewest cues, for a span too short for the preferred cut."""
    words = text.split()
    if not words:
        return []
    strengths = [WORD] * len(words) if tight else [break_strength(w) for w in words]
    return [tuple(" ".join(line) for line in cue_lines(cue, style)) for cue in pack_words(words, strengths, style)]
