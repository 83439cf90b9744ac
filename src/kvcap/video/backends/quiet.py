"""Silence a C/C++ library's own writes to stderr (fd 2) and keep them for the error message.

decord logs FFmpeg and C++ errors straight to fd 2; users should see kvcap's one-line
reasons instead. Redirecting fd 2 affects the whole process, so the lock keeps two threads
from interleaving redirections (which could leave fd 2 pointing at a closed file).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()


class Captured:
    """What the library wrote while silenced; `last_line` is the most useful part."""

    text = ""

    @property
    def last_line(self) -> str:
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""


@contextmanager
def quiet_stderr() -> Iterator[Captured]:
    captured = Captured()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            sys.stderr.flush()
        except Exception:  # pragma: no cover - a closed or odd sys.stderr
            pass
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
