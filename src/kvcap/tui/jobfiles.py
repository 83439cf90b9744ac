"""Follow a caption output folder (job.json + captions.jsonl, or a shard's parts) for the TUI.
No textual, no torch; the file names are kvcap.records.files."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from kvcap.records import CaptionRecord, JobState, files, read_json_object
from kvcap.tui.follow import JsonlTail, StateFollower, file_identity


class JobReader(StateFollower):
    """Follows one caption output folder (job.json + captions.jsonl)."""

    LATEST_KEPT = 200

    def __init__(self, path: str | Path, part: str | None = None):
        """`part` follows one shard of a sharded job, e.g. "shard-0-of-3" for
        `job.shard-0-of-3.json` + `captions.shard-0-of-3.jsonl`."""
        self.path = Path(path)
        self.name = f"{self.path.name} [{part}]" if part else self.path.name
        self._state_name = files.job_name(part)
        self.state = JobState()
        self.has_state = False
        self.gone = False
        self.latest: deque[CaptionRecord] = deque(maxlen=self.LATEST_KEPT)
        self.failures: dict[str, CaptionRecord] = {}  # video -> its latest error record
        self.version = 0
        self._captions = JsonlTail(self.path / files.captions_name(part))
        self._state_mtime: tuple[int, int, int] | None = None

    def poll(self) -> bool:
        if not self.path.is_dir():
            changed = not self.gone
            self.gone = True
            self.version += changed
            return changed
        changed = self.gone
        self.gone = False
        path = self.path / self._state_name
        mtime = file_identity(path)
        if mtime is not None and mtime != self._state_mtime:
            data = read_json_object(path)
            if data is not None:
                self._state_mtime = mtime
                self.state = JobState.from_dict(data)
                self.has_state = True
                changed = True
        records, restarted = self._captions.poll()
        if restarted:
            self.latest.clear()
            self.failures.clear()
        for record in records:
            try:
                item = CaptionRecord.from_dict(record)
            except ValueError:  # not a caption record
                self._captions.bad_lines += 1
                continue
            if item.status == "error":
                self.failures[item.video] = item
            else:
                self.failures.pop(item.video, None)  # a rerun fixed it
                self.latest.append(item)
        changed |= bool(records) or restarted
        if changed:
            self.version += 1
        return changed



def is_job_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / files.JOB).exists() or (path / files.CAPTIONS).exists() or any(path.glob(files.SHARD_JOB_GLOB))
    )


def job_parts(path: Path) -> list[str | None]:
    """The jobs one output folder holds: None for an unsharded job, "shard-i-of-n" per shard."""
    shards = sorted(part for p in path.glob(files.SHARD_JOB_GLOB) if (part := files.job_part(p.name)))
    parts: list[str | None] = []
    # captions.jsonl beside shard jobs is their `caption merge` output, not a job of its own
    if (path / files.JOB).exists() or ((path / files.CAPTIONS).exists() and not shards):
        parts.append(None)
    return parts + shards
