"""The rich Console that kvcap prints its tables with (probe, compare, score, import summary...),
and `first_of`, how a long list of failures is cut short on the terminal.

On a terminal a table fits the terminal. Anywhere else (a log file, a pipe, CI, a test's
subprocess) rich would assume 80 columns, or $COLUMNS, and cut or fold paths, statuses and error
messages mid-word where the width happens to fall; there the console is LOG_WIDTH wide instead,
so every table takes its natural width and each row stays on one line, whole.
"""

from __future__ import annotations

from typing import IO, Sequence

# Wider than any row kvcap prints (paths, hub errors); a table only grows to its content's width.
LOG_WIDTH = 4096


def table_console(file: IO[str] | None = None, *, stderr: bool = False):
    """A rich Console on `file` (default stdout, or stderr): the terminal's width, or LOG_WIDTH."""
    from rich.console import Console

    console = Console(file=file, stderr=stderr)
    if not console.is_terminal:
        console.width = LOG_WIDTH
    return console


def first_of(lines: Sequence[str], limit: int, rest: str = "") -> list[str]:
    """The first `limit` of `lines`, then one `... and K more<rest>` line for the others (a list of
    failures on the terminal: the first few whole, the count of the rest and where they all are)."""
    shown = list(lines[:limit])
    if len(lines) > limit:
        shown.append(f"... and {len(lines) - limit} more{rest}")
    return shown
