"""`OUT/review.html`: one self-contained page (inline CSS and script, no network) over the rows.

The skeleton, style and script are package files under `assets/`, filled with the stdlib's
`string.Template` (no template engine is a kvcap dependency). Images are relative links to
`review/<hash>.jpg`, so the page opens from disk and moves with its folder.

Size budget (checked by tests/review/test_review_page.py, measured by bench/review.py): at most
`HTML_BYTES_PER_VIDEO` bytes of markup per video beyond its texts (captions, reference, error,
name), plus `HTML_FIXED_BYTES` once for the skeleton, style and script; thumbnails are one JPEG
strip a video of `TILE`-px tiles (8 frames: 512x64, under 16 KB). At 10,000 videos that is at
most 8 MB of markup, plus the texts (demo-length captions ~0.3 KB a video, AI-Hub-length ones
~1.7 KB), and ~100 MB of strips that the browser loads only as they scroll into view
(`loading="lazy"`); rows off screen are not laid out (`content-visibility: auto`).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

from kvcap.fsutil import atomic_write_text

PAGE_NAME = "review.html"
HTML_BYTES_PER_VIDEO = 800
"""Markup budget per video (attributes, tags, badges, the strip's <img>), its texts excluded."""
HTML_FIXED_BYTES = 8_000
"""Skeleton, style and script, once per page."""


def _asset(name: str) -> str:
    return resources.files("kvcap.review").joinpath("assets", name).read_text(encoding="utf-8")


@dataclass
class PageSummary:
    videos: int
    ok: int
    errors: int
    suspect: int
    with_frames: int
    checkpoint: str | None
    references: str | None
    meteor: float | None


def summary_line(s: PageSummary) -> str:
    parts = [f"{s.videos} videos: {s.ok} ok, {s.errors} errors, {s.suspect} suspect, {s.with_frames} with frames"]
    if s.checkpoint:
        parts.append(f"checkpoint {s.checkpoint}")
    if s.references:
        mean = f", mean METEOR {s.meteor:.3f}" if s.meteor is not None else ""
        parts.append(f"references {s.references}{mean}")
    return " · ".join(parts)


def render_page(title: str, summary: PageSummary, rows: list[str]) -> str:
    """The whole page as text."""
    return Template(_asset("page.html")).substitute(
        title=escape(title), summary=escape(summary_line(summary)), count=summary.videos,
        rows="".join(rows), css=_asset("review.css"), js=_asset("review.js"),
    )


def write_page(out: Path, text: str) -> Path:
    """Write OUT/review.html atomically (a reader never sees half a page)."""
    path = out / PAGE_NAME
    atomic_write_text(path, text)
    return path
