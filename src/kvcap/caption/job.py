"""`OUT/job.json`: the live state of a caption job, for the TUI and for humans.

Written atomically (temp file + rename) so a reader never sees half a file, and throttled to
at most one write per `min_interval` seconds while running (plus one at every status change),
so a fast job does not spend its time rewriting JSON.

    {"status": "running|finished|interrupted|failed", "pid", "host", "checkpoint", "inputs",
     "output", "shard", "total", "done", "ok", "failed", "skipped", "throughput", "eta_s",
     "started", "updated", "error", "subtitle_overflow"}

`done` counts every video accounted for (ok + failed + skipped); `throughput` is videos per
second captioned by this run (skipped ones excluded), and `eta_s` the time left at that rate.
`subtitle_overflow` counts the srt/vtt cues of segments too short for their text
(kvcap.caption.cue_timing).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcap.errors import KvcapError
from kvcap.fsutil import atomic_write_json, atomic_write_text
from kvcap.records import (
    JOB_STATUSES,
    JobState,
    dumps_jsonl,
    latest_per_video,
    read_jsonl,
    utc_now,
)


@dataclass
class JobProgress:
    """Counts of a caption job; also what the pipeline hands its `progress` callback."""

    total: int
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    subtitle_overflow: int = 0  # srt/vtt cues squeezed into a span too short for their text
    started_monotonic: float = field(default_factory=time.monotonic)
    engine: str | None = None
    """The decode engine(s) that ran (`static+cudagraph`, `static`, `hf`), known after the first batch."""
    engine_note: str | None = None
    """Why the engine is slower than it should be (CUDA graph capture failed: ...), else None."""

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.skipped

    @property
    def processed(self) -> int:
        """Videos captioned (or failed) by this run; skipped ones are not work done."""
        return self.ok + self.failed

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_monotonic

    @property
    def throughput(self) -> float:
        """Videos per second over this run so far."""
        elapsed = self.elapsed_s
        return self.processed / elapsed if elapsed > 0 and self.processed else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.throughput
        left = self.total - self.done
        if left <= 0:
            return 0.0
        return left / rate if rate > 0 else None


class JobFile:
    """Keeps `job.json` in step with a JobProgress (atomic, throttled writes)."""

    def __init__(
        self,
        path: str | Path,
        progress: JobProgress,
        *,
        checkpoint: str | None,
        inputs: list[str],
        output: str,
        shard: str | None = None,
        min_interval: float = 1.0,
        extra: dict[str, Any] | None = None,
    ):
        self.path = Path(path)
        self.extra = dict(extra or {})  # more keys for job.json (e.g. "generation": the settings used)
        self.progress = progress
        self.min_interval = min_interval
        self.status = "running"
        self.error: str | None = None
        self._last_write = float("-inf")
        self._static = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "checkpoint": checkpoint,
            "inputs": inputs,
            "output": output,
            "shard": shard,
            "started": utc_now(),
        }

    def state(self) -> dict[str, Any]:
        p = self.progress
        eta = p.eta_s
        state = JobState(
            status=self.status, **self._static, total=p.total, done=p.done, ok=p.ok, failed=p.failed,
            skipped=p.skipped, throughput=round(p.throughput, 4), eta_s=None if eta is None else round(eta, 1),
            updated=utc_now(), error=self.error, engine=p.engine, subtitle_overflow=p.subtitle_overflow,
        ).to_dict()
        state.update(self.extra)  # e.g. "generation": the settings this job decodes with
        return state

    def update(self, *, force: bool = False) -> bool:
        """Write the file if `min_interval` has passed since the last write (or `force`)."""
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return False
        atomic_write_json(self.path, self.state())
        self._last_write = now
        return True

    def close(self, status: str, error: str | None = None) -> None:
        """Record the final status (always written)."""
        if status not in JOB_STATUSES:
            raise ValueError(f"job status must be one of {', '.join(JOB_STATUSES)}, got {status!r}")
        self.status = status
        self.error = error
        self.update(force=True)


# ---------------------------------------------------------------------------------------------
# The captions ledger: captions.jsonl (or a shard's part), append-only while running.
# ---------------------------------------------------------------------------------------------


class JobLockedError(KvcapError, RuntimeError):
    """Another live process is writing the same captions file (one line)."""


class CaptionsLedger:
    """The job's JSONL of per-video records: resume reads it, the run appends to it.

    Safety against a kill at any moment comes from the order of operations: subtitles are
    written atomically before their record; each record is one `write` of one whole line,
    flushed; a torn last line (killed mid-write) is cut before the next append; `compact`
    rewrites the file with one record per video (the last one wins) through an atomic rename.
    A lock file keeps two processes from appending to the same file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.stem}.lock")
        self._log = None  # kvcap.caption.writers.CaptionsJsonl while open
        self._lock_handle = None

    # -- locking ---------------------------------------------------------------------------
    def _lock(self) -> None:
        """Take the lock file's flock, or raise JobLockedError naming the live holder.

        A clean finish unlinks the lock file while still holding it (see `close`), so a process
        that opened the old file just before may win the flock on an unlinked inode: after the
        flock, check that the file locked is still the one at the path, else start over.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Linux/macOS: no lock
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.lock_path, "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                handle.close()
                raise JobLockedError(
                    f"{self.path}: another kvcap caption (pid {holder}) is writing this file; "
                    "wait for it or use another output folder"
                ) from None
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()  # the holder finished and removed it: lock the new file instead
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self._lock_handle = handle

    def open(self) -> dict[str, dict[str, Any]]:
        """Lock, repair a torn tail, and return the existing records {video: last record}."""
        from kvcap.caption.writers import CaptionsJsonl
        from kvcap.fsutil import remove_stale_temps

        self._lock()
        remove_stale_temps(self.path.parent)  # subtitles/JSON half-written by a killed run
        self._log = CaptionsJsonl(self.path).open()  # cuts a torn last line, reads the records
        return dict(self._log.latest)

    @staticmethod
    def read(path: str | Path) -> dict[str, dict[str, Any]]:
        """{video: last record} from a captions JSONL (undecodable lines skipped)."""
        path = Path(path)
        return latest_per_video(read_jsonl(path)) if path.exists() else {}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (validated by CaptionsJsonl: known keys, status, one-line error)."""
        assert self._log is not None, "open() the ledger first"
        self._log.append(record)

    def compact(self, order: list[str] | None = None) -> int:
        """Rewrite the file with exactly one record per video (atomic); returns the count.

        Videos in `order` come first in that order, then any others in file order.
        """
        records = self.read(self.path)
        keys = [k for k in (order or []) if k in records]
        seen = set(keys)
        keys += [k for k in records if k not in seen]
        atomic_write_text(self.path, dumps_jsonl(records[k] for k in keys))
        if self._log is not None:  # the old handle points at the replaced file: reopen
            self._log.close()
            self._log.open()
        return len(keys)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock_handle is not None:
            # Unlink while still holding the flock: a waiter that locked the old inode sees it
            # is no longer at the path and retries (see `_lock`); nothing is left behind.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
            self._lock_handle.close()  # releases the flock
            self._lock_handle = None
