"""One row of the review page per video: its figures (for sorting and filtering) and its HTML.

The row is plain server-rendered HTML, readable with scripts off; its `data-*` attributes carry
the numbers the page's script sorts and filters by. Every text from a record or a manifest goes
through `html.escape`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from kvcap.review.sources import ReviewItem
from kvcap.review.strips import TILE, StripResult


@dataclass
class RowFigures:
    """The numbers a row is sorted and filtered by (None where the record has none)."""

    meteor: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    suspect: str | None = None


def figures_of(item: ReviewItem, meteor: float | None) -> RowFigures:
    """The record's own confidence figures; the compression ratio is computed from the caption
    (`kvcap.records.compression_ratio`, whisper's) when the record predates it."""
    from kvcap.records import compression_ratio

    record = item.record
    ratio = _number(record.compression_ratio)
    if ratio is None and record.ok and record.caption:
        ratio = compression_ratio(record.caption)
    return RowFigures(meteor=meteor, avg_logprob=_number(record.avg_logprob), compression_ratio=ratio,
                      suspect=record.suspect or None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _attr(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _clock(seconds: Any) -> str:
    value = _number(seconds) or 0.0
    minutes, rest = divmod(value, 60)
    return f"{int(minutes)}:{rest:05.2f}"


def _segments_html(item: ReviewItem) -> str:
    parts = []
    for segment in item.record.segments:
        lp = _number(segment.get("avg_logprob"))
        conf = f' <span class="lp">{lp:.2f}</span>' if lp is not None else ""
        parts.append(f'<li><time>{_clock(segment.get("start"))}–{_clock(segment.get("end"))}</time>{conf} '
                     f'{escape(str(segment.get("text") or ""))}</li>')
    return f'<ol class="segs">{"".join(parts)}</ol>'


def _badges(item: ReviewItem, fig: RowFigures) -> str:
    out = []
    if fig.meteor is not None:
        out.append(f'<span class="b m">METEOR {fig.meteor:.3f}</span>')
    if fig.avg_logprob is not None:
        out.append(f'<span class="b">logprob {fig.avg_logprob:.2f}</span>')
    if fig.compression_ratio is not None:
        out.append(f'<span class="b">compression {fig.compression_ratio:.2f}</span>')
    if fig.suspect:
        out.append(f'<span class="b s">suspect: {escape(fig.suspect)}</span>')
    if not item.record.ok:
        out.append('<span class="b e">error</span>')
    return "".join(out)


def _strip_html(item: ReviewItem, strip: StripResult | None) -> str:
    if strip is not None and strip.file:
        tiles = len(strip.plan.frame_times)
        times = " ".join(f"{t:.2f}" for t in strip.plan.frame_times)
        return (f'<img class="strip" loading="lazy" decoding="async" src="{escape(strip.file)}" '
                f'width="{tiles * TILE}" height="{TILE}" alt="frames at {times} s" title="frames at {times} s">')
    why = strip.error if strip is not None and strip.error else item.missing
    if why is None:
        why = "no frames in the record" if item.record.ok else "not decoded"
    return f'<p class="nostrip">frames not shown: {escape(why)}</p>'


def row_html(item: ReviewItem, fig: RowFigures, strip: StripResult | None, reference: str | None) -> str:
    """The <article> of one video."""
    record = item.record
    body = (_segments_html(item) if record.ok
            else f'<p class="err">{escape(record.error or "error (no reason recorded)")}</p>')
    ref = f'<p class="ref"><b>reference</b> {escape(reference)}</p>' if reference is not None else ""
    return (
        f'<article class="v" data-k="{escape(item.key)}" data-m="{_attr(fig.meteor)}" '
        f'data-lp="{_attr(fig.avg_logprob)}" data-cr="{_attr(fig.compression_ratio)}" '
        f'data-e="{0 if record.ok else 1}" data-s="{1 if fig.suspect else 0}">'
        f'<h2>{escape(item.key)}</h2><div class="badges">{_badges(item, fig)}</div>'
        f'{_strip_html(item, strip)}<div class="text">{body}{ref}</div></article>\n'
    )
