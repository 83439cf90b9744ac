"""The rich Console that kvcap prints its tables with (probe, compare, score, import summary...).

On a terminal a table fits the terminal. Anywhere else (a log file, a pipe, CI, a test's
subprocess) rich would assume 80 columns, or $COLUMNS, and cut or fold paths, statuses and error
messages mid-word where the width happens to fall; there the console is LOG_WIDTH wide instead,
so every table takes its natural width and each row stays on one line, whole.
"""

from __future__ import annotations

from typing import IO

# Wider than any row kvcap prints (paths, hub errors); a table only grows to its content's width.
LOG_WIDTH = 4096


def table_console(file: IO[str] | None = None, *, stderr: bool = False):
    """A rich Console on `file` (default stdout, or stderr): the terminal's width, or LOG_WIDTH."""
    from rich.console import Console

    console = Console(file=file, stderr=stderr)
    if not console.is_terminal:
        console.width = LOG_WIDTH
    return console
