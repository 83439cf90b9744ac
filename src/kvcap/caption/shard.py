"""Splitting a caption job across processes or machines, and joining the parts again.

`--shard i/n` takes every n-th video of the sorted file list starting at i: the slices are
disjoint, cover the list, differ in size by at most one, and need no coordination between
processes (each one lists the same folder and takes its own slice). Each shard writes
`captions.shard-i-of-n.jsonl`; `kvcap caption merge OUT` joins them into `captions.jsonl`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar

from kvcap.errors import KvcapError
from kvcap.fsutil import atomic_write_text
from kvcap.records import dumps_jsonl, files, latest_per_video, read_jsonl

T = TypeVar("T")


class ShardError(KvcapError, ValueError):
    """A bad `--shard` value or an incomplete set of parts (one line)."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def jsonl_name(self) -> str:
        return files.captions_name(files.shard_part(self.index, self.count))

    @property
    def job_name(self) -> str:
        # Shards may share one output folder; each keeps its own state file.
        return files.job_name(files.shard_part(self.index, self.count))

    def select(self, items: Sequence[T]) -> list[T]:
        """Every `count`-th item starting at `index` (balanced: sizes differ by at most one)."""
        return list(items[self.index :: self.count])


def parse_shard(text: str | Shard | None) -> Shard | None:
    """`"i/n"` -> Shard(i, n) with 0 <= i < n; None/"" -> None (no sharding)."""
    if text is None or isinstance(text, Shard):
        return text
    text = text.strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not match:
        raise ShardError(f"--shard {text}: expected i/n, e.g. 0/4 (shard i of n, counting from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ShardError(f"--shard {text}: n must be at least 1")
    if index >= count:
        raise ShardError(f"--shard {text}: i must be below n (shards are numbered 0..{count - 1})")
    return Shard(index, count)


def shard_from_env(environ: dict[str, str] | None = None) -> Shard | None:
    """The shard of this process under `accelerate launch` / `torchrun` (RANK, WORLD_SIZE).

    Lets `accelerate launch -m kvcap.cli caption ...` run one shard per GPU with no flags.
    """
    env = os.environ if environ is None else environ
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    except (KeyError, ValueError):
        return None
    if world <= 1 or not 0 <= rank < world:
        return None
    return Shard(rank, world)


def find_parts(out_dir: str | Path) -> dict[int, dict[int, Path]]:
    """Shard parts in `out_dir`: {n: {i: path}}."""
    found: dict[int, dict[int, Path]] = {}
    for path in sorted(Path(out_dir).glob(files.SHARD_CAPTIONS_GLOB)):
        match = files.SHARD_CAPTIONS_RE.match(path.name)
        if match:
            index, count = int(match.group(1)), int(match.group(2))
            found.setdefault(count, {})[index] = path
    return found


@dataclass
class MergeReport:
    path: Path
    parts: list[Path]
    records: int
    ok: int
    failed: int


def merge_shards(out_dir: str | Path, count: int | None = None) -> MergeReport:
    """Join every `captions.shard-i-of-n.jsonl` in `out_dir` into `captions.jsonl` (atomically).

    Refuses, naming the missing shard(s), unless all n parts are present. One record per video
    in the result (a later record for the same video wins), sorted by video path.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ShardError(f"{out_dir}: no such folder")
    found = find_parts(out_dir)
    if count is None:
        if not found:
            raise ShardError(f"{out_dir}: no shard parts (captions.shard-i-of-n.jsonl) to merge")
        if len(found) > 1:
            kinds = ", ".join(f"of-{n}" for n in sorted(found))
            raise ShardError(f"{out_dir}: parts from different shard counts ({kinds}); pass --shards N to pick one")
        (count,) = found
    parts = found.get(count, {})
    missing = [i for i in range(count) if i not in parts]
    if missing:
        names = ", ".join(files.captions_name(files.shard_part(i, count)) for i in missing)
        raise ShardError(f"{out_dir}: missing shard {', '.join(f'{i}/{count}' for i in missing)} ({names}); run it, then merge again")
    ordered = [parts[i] for i in range(count)]
    by_video = latest_per_video(record for part in ordered for record in read_jsonl(part))
    records = [by_video[key] for key in sorted(by_video)]
    text = dumps_jsonl(records)
    target = out_dir / files.CAPTIONS
    atomic_write_text(target, text)
    ok = sum(1 for r in records if r.get("status") == "ok")
    return MergeReport(path=target, parts=ordered, records=len(records), ok=ok, failed=len(records) - ok)
