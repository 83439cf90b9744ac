"""What every benchmark shares: where it records, and how it names the machine and commit.

Each bench keeps one table under its own `## <name>` heading in bench/RESULTS.md and adds a row
at the end of that table; other sections are never touched.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def append_row(heading: str, header: str, row: str, path: Path = RESULTS) -> None:
    """Insert `row` after the last row of the table under `heading`, before any notes written below
    it (section created with `header` if missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if heading not in text.split("\n"):
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{header.rstrip()}\n"
    lines = text.rstrip("\n").split("\n")
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    first = next((i for i in range(start + 1, end) if lines[i].startswith("|")), None)
    if first is not None:  # the section's own table: its rows run on from its header
        end = next((i for i in range(first, end) if not lines[i].startswith("|")), end)
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    lines.insert(end, row.rstrip("\n"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def git_commit() -> str:
    """Short HEAD, or "?" where the tree has no git (e.g. a copy on a device machine)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


def machine() -> str:
    return f"{platform.node() or 'vm'} {platform.machine()} ({os.cpu_count()} cpu)"


def now() -> str:
    return f"{dt.datetime.now():%Y-%m-%d %H:%M}"
