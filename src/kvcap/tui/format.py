"""Plain-text formatting for the TUI's cells (no textual import; easy to test)."""

from __future__ import annotations

DASH = "–"

STATUS_ORDER = {"running": 0, "stale": 1, "failed": 2, "interrupted": 3, "finished": 4, "unknown": 5, "gone": 6}
"""Runs-table order: what needs watching first."""


def fmt_duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h04m`, `3d02h`; – for unknown."""
    if seconds is None or seconds < 0:
        return DASH
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_float(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_lr(value: float | None) -> str:
    return DASH if value is None else f"{value:.2e}"


def fmt_count(value: int | float | None) -> str:
    """4.2M, 21.0M, 64, 4,608 style for parameter and token counts."""
    if value is None:
        return DASH
    value = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size and unit != "k":
            return f"{value / size:.1f}{unit}"
    return f"{int(value):,}"


def progress_bar(done: int, total: int, width: int = 10) -> str:
    """A fixed-width text bar: `██████░░░░`."""
    if total <= 0:
        return "░" * width
    frac = min(max(done / total, 0.0), 1.0)
    eighths = int(round(frac * width * 8))
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part and full < width else ""
    bar = "█" * full + partial.replace(" ", "")
    return bar + "░" * (width - len(bar))


def fmt_progress(step: int, total: int, width: int = 8) -> str:
    if total <= 0:
        return f"{'░' * width} {step}/?"
    return f"{progress_bar(step, total, width)} {step}/{total}"


def generation_summary(settings: dict) -> str:
    """One line of a caption job's generation settings (job.json "generation"), e.g.
    `generation  greedy · beams 1 · max 512 tokens · rep 1.05 · prompt "이 영상을 ..."`."""
    parts = []
    if settings.get("do_sample"):
        parts.append(f"sampling t={settings.get('temperature')} top-p={settings.get('top_p')}")
    else:
        parts.append("greedy")
    for key, label in (("num_beams", "beams {}"), ("max_new_tokens", "max {} tokens"),
                       ("repetition_penalty", "rep {}"), ("no_repeat_ngram_size", "no-repeat {}-grams")):
        value = settings.get(key)
        if value is not None and not (key == "no_repeat_ngram_size" and not value):
            parts.append(label.format(value))
    prompt = settings.get("prompt")
    if isinstance(prompt, str) and prompt:
        short = " ".join(prompt.split())
        parts.append(f'prompt "{short if len(short) <= 40 else short[:39] + "…"}"')
    return "generation  " + " · ".join(parts)
