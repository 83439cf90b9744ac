"""`write_review(OUT)`: the review page of a caption job (what `kvcap review` and
`kvcap caption --review` call)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kvcap.review.page import PageSummary, render_page, write_page
from kvcap.review.rows import figures_of, row_html
from kvcap.review.sources import ReviewItem, load_job
from kvcap.review.strips import STRIPS_DIR, StripResult, plan_strip, prune_strips, write_strips


@dataclass
class ReviewReport:
    page: Path
    videos: int
    strips: int  # rows with a strip
    reused: int  # strips kept from an earlier run
    frame_errors: list[str] = field(default_factory=list)  # "key: reason" for rows without frames
    pruned: int = 0
    page_bytes: int = 0
    strip_bytes: int = 0
    seconds: float = 0.0


def _strips(items: list[ReviewItem], out: Path, workers: int | str, backend: str) -> dict[str, StripResult]:
    """Every ok video's strip, decoded as the caption job decodes: `workers` threads, each
    decoder given its share of FFmpeg's threads (kvcap.video.threads)."""
    from kvcap.video import threads

    count, per_decoder = threads.plan(workers)
    threads.set_decoder_threads(per_decoder)
    plans = []
    for item in items:
        if item.path is None or not item.record.ok:
            continue
        plan = plan_strip(item.key, item.path, item.record.segments, item.record.frame_times, item.record.duration)
        if plan is not None:
            plans.append(plan)
    return write_strips(plans, out, count, backend)


def _meteor(items: list[ReviewItem], refs: str | Path | None, score_cfg) -> tuple[dict[str, float], dict[str, str]]:
    if refs is None:
        return {}, {}
    from kvcap.review.references import clip_meteor

    return clip_meteor(items, refs, score_cfg)


def write_review(out: str | Path, *, refs: str | Path | None = None, score_cfg=None, workers: int | str = "auto",
                 backend: str = "auto", say: Callable[[str], None] | None = None) -> ReviewReport:
    """Write OUT/review.html and its strips under OUT/review/ (ReviewError when OUT is no
    caption output; a video that cannot be sampled again is noted on its row)."""
    started = time.perf_counter()
    say = say or (lambda text: None)
    job = load_job(out)
    out = job.out
    say(f"reviewing {len(job.items)} videos in {out}")
    strips = _strips(job.items, out, workers, backend)
    meteor, references = _meteor(job.items, refs, score_cfg)
    rows, suspect, scored = [], 0, []
    for item in job.items:
        fig = figures_of(item, meteor.get(item.key))
        suspect += bool(fig.suspect)
        if fig.meteor is not None:
            scored.append(fig.meteor)
        rows.append(row_html(item, fig, strips.get(item.key), references.get(item.key)))
    ok = sum(item.record.ok for item in job.items)
    summary = PageSummary(videos=len(job.items), ok=ok, errors=len(job.items) - ok, suspect=suspect,
                          with_frames=sum(1 for s in strips.values() if s.file), checkpoint=job.checkpoint,
                          references=str(refs) if refs is not None else None,
                          meteor=sum(scored) / len(scored) if scored else None)
    page = write_page(out, render_page(str(out), summary, rows))
    keep = {s.file for s in strips.values() if s.file}
    report = ReviewReport(
        page=page, videos=len(job.items), strips=len(keep), reused=sum(s.reused for s in strips.values()),
        frame_errors=[f"{k}: {s.error}" for k, s in strips.items() if s.error],
        pruned=prune_strips(out, keep), page_bytes=page.stat().st_size,
        strip_bytes=sum((out / f).stat().st_size for f in keep), seconds=time.perf_counter() - started,
    )
    return report


__all__ = ["ReviewReport", "STRIPS_DIR", "write_review"]
