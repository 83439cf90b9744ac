"""Following files that another process writes, for the TUI (no textual, no torch).

Live files are followed, not reloaded: :class:`JsonlTail` remembers the byte offset it has
read up to and, on each poll, parses only the complete lines appended since (with the one
JSONL parser, kvcap.records.iter_jsonl). A last line without its newline is a write in
progress: it is left for the next poll. A file that shrank or was replaced (a compaction
renames a new file over it) is read again from the start. `file_identity` tells a replaced
state file from an unchanged one; `StateFollower` is the status rule the run and job readers
share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kvcap.records import JobState, PidAlive, RunState, iter_jsonl, live_status, pid_alive


class JsonlTail:
    """Follows an append-only JSONL file: each `poll()` returns only the new whole records."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0
        self._inode: int | None = None

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """(new records, restarted): `restarted` is True when the file was replaced/shrunk and
        the records are the whole file again (callers should drop what they had)."""
        try:
            handle = open(self.path, "rb")
        except OSError:
            return [], False
        with handle:
            stat = os.fstat(handle.fileno())
            restarted = False
            if (self._inode is not None and stat.st_ino != self._inode) or stat.st_size < self.offset:
                self.offset = 0
                restarted = True
            self._inode = stat.st_ino
            if stat.st_size == self.offset:
                return [], restarted
            handle.seek(self.offset)
            data = handle.read(stat.st_size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:  # no complete line yet: wait for the writer to finish it
            return [], restarted
        self.offset += end + 1
        records: list[dict[str, Any]] = []
        for _, value in iter_jsonl(data[: end + 1], complete_only=True):
            if isinstance(value, dict):
                records.append(value)
            else:  # not JSON, or not an object
                self.bad_lines += 1
        return records, restarted


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """A file's identity for "has it changed": mtime, inode (atomic renames) and size."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


class StateFollower:
    """What the run and job readers share: a folder whose state file (state.json, job.json)
    says `running`, or not, and the one rule for the status shown."""

    state: RunState | JobState
    has_state: bool
    gone: bool

    def status(self, now: float, alive: PidAlive = pid_alive, host: str | None = None) -> str:
        """The status to show: the state file's, or `stale` when it claims running but its
        process is gone (same host) or it stopped updating; `gone` when deleted."""
        if self.gone:
            return "gone"
        if not self.has_state:
            return "unknown"
        state = self.state
        return live_status(state.status, state.pid, state.host, state.updated_s, now, alive=alive, this_host=host)
