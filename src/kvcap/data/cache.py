"""The feature cache: the frozen vision encoder's outputs, computed once per clip.

Training spends most of its time decoding video and running the (frozen) encoder when it does
both on every step. Since neither changes during training, their output is stored per clip and
both stages read it back.

A cache entry is keyed by everything its value depends on:

    sha256(content hash of the video file, encoder key (id, layer, cls, size), frames)

so a changed video (new bytes), another encoder, layer, CLS handling, resolution or frame
count is a different key and can never be served stale features.

Layout under `cache_dir`:

    shards/<k[:2]>/<k>.safetensors   one clip: "features" (T, N, D), "times" (T,) seconds;
                                     metadata: video, encoder, frames (written atomically)
    index.jsonl                      a line per write: key, file, video, encoder, frames, shape, bytes
    hashes.jsonl                     memo of content hashes by (path, size, mtime_ns, inode)
    stats.jsonl                      a line per session: hits, misses, writes

`fill_cache` fills it for a list of clips (decode in threads, encode in batches); the trainer
and `kvcap cache build` both call it.

The shard files are the truth: an index line whose shard is gone is ignored, and a shard that
cannot be read is a miss (and is removed). Appends of one short line are atomic on POSIX, so
several processes (DDP ranks, `kvcap cache build` beside a run) can share one cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kvcap.errors import one_line
from kvcap.fsutil import append_jsonl, atomic_write_bytes
from kvcap.records import read_jsonl

CACHE_VERSION = 1
HASH_CHUNK = 1 << 20


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes (hex); of the member's bytes for a zip member `a.zip::b.mp4`."""
    from kvcap.video.source import content_hash as source_hash

    return source_hash(path)


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    from kvcap.video.source import stat_key  # a plain file or a zip member

    return stat_key(path)


@dataclass
class CacheStats:
    """Counters of one FeatureCache object (one process, one session)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "writes": self.writes}


class FeatureCache:
    """Per-clip encoder features under `cache_dir`, for one encoder (its `VisionEncoder.key`)."""

    def __init__(self, cache_dir: str | Path, encoder_key: str):
        self.dir = Path(cache_dir)
        self.encoder_key = str(encoder_key)
        self.stats = CacheStats()
        self._hashes: dict[tuple[str, int, int, int], str] = {}
        self._load_hash_memo()

    # -- keys ---------------------------------------------------------------------------------

    def _load_hash_memo(self) -> None:
        memo = self.dir / "hashes.jsonl"
        if memo.is_file():
            for rec in read_jsonl(memo):
                try:
                    key = (rec["path"], int(rec["size"]), int(rec["mtime_ns"]), int(rec["ino"]))
                    self._hashes[key] = str(rec["sha256"])
                except (KeyError, TypeError, ValueError):
                    continue  # a line from another version: just rehash

    def video_hash(self, video: str | Path) -> str:
        """The content hash of `video`, memoised by (path, size, mtime, inode).

        Rewriting a file changes its mtime (and usually size), so a memo hit still means the
        same bytes; a miss rehashes.
        """
        path = Path(video)
        skey = _stat_key(path)
        cached = self._hashes.get(skey)
        if cached is not None:
            return cached
        digest = content_hash(path)
        self._hashes[skey] = digest
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "hashes.jsonl", "a", encoding="utf-8") as handle:
            append_jsonl(handle, {"path": skey[0], "size": skey[1], "mtime_ns": skey[2], "ino": skey[3], "sha256": digest})
        return digest

    def key_for(self, video: str | Path, frames: int) -> str:
        """The entry key of `video` sampled to `frames` frames by this cache's encoder."""
        payload = json.dumps(
            {"v": CACHE_VERSION, "video": self.video_hash(video), "encoder": self.encoder_key, "frames": int(frames)},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def shard_path(self, key: str) -> Path:
        return self.dir / "shards" / key[:2] / f"{key}.safetensors"

    # -- read / write ---------------------------------------------------------------------------

    def get(self, video: str | Path, frames: int, *, key: str | None = None):
        """`(features (T, N, D), times (T,))` tensors on CPU, or None on a miss."""
        from safetensors import safe_open

        key = key or self.key_for(video, frames)
        path = self.shard_path(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                features = handle.get_tensor("features")
                times = handle.get_tensor("times")
        except Exception:  # noqa: BLE001 - a damaged shard is a miss, never an error
            path.unlink(missing_ok=True)
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return features, times

    def contains(self, video: str | Path, frames: int) -> bool:
        """Whether an entry exists (does not count as a hit or miss)."""
        return self.shard_path(self.key_for(video, frames)).is_file()

    def put(self, video: str | Path, frames: int, features, times=None, *, key: str | None = None) -> Path:
        """Store one clip's features (T, N, D) (+ frame times (T,)); atomic. Returns the shard."""
        import torch
        from safetensors.torch import save

        key = key or self.key_for(video, frames)
        features = features.detach().to("cpu").contiguous()
        if times is None:
            times = torch.zeros(features.shape[0], dtype=torch.float32)
        times = torch.as_tensor(times, dtype=torch.float32).contiguous()
        meta = {"video": str(video), "encoder": self.encoder_key, "frames": str(int(frames)), "version": str(CACHE_VERSION)}
        data = save({"features": features, "times": times}, metadata=meta)
        path = self.shard_path(key)
        atomic_write_bytes(path, data)
        self.stats.writes += 1
        with open(self.dir / "index.jsonl", "a", encoding="utf-8") as handle:
            append_jsonl(handle, {
                "key": key, "file": str(path.relative_to(self.dir)), "video": str(video),
                "encoder": self.encoder_key, "frames": int(frames), "shape": list(features.shape),
                "dtype": str(features.dtype).replace("torch.", ""), "bytes": len(data), "time": time.time(),
            })
        return path

    def flush_stats(self) -> None:
        """Append this session's hit/miss/write counts to `stats.jsonl` (for `kvcap cache info`)."""
        if not (self.stats.hits or self.stats.misses or self.stats.writes):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "stats.jsonl", "a", encoding="utf-8") as handle:
            append_jsonl(handle, {**self.stats.as_dict(), "encoder": self.encoder_key, "pid": os.getpid(), "time": time.time()})
        self.stats = CacheStats()


@dataclass
class CacheInfo:
    """What `kvcap cache info` reports."""

    cache_dir: str
    entries: int = 0
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    writes: int = 0
    sessions: int = 0
    by_encoder: dict[str, int] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float | None:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache_dir": self.cache_dir, "entries": self.entries, "bytes": self.bytes, "hits": self.hits,
            "misses": self.misses, "writes": self.writes, "hit_rate": self.hit_rate, "sessions": self.sessions,
            "by_encoder": self.by_encoder,
        }


def cache_info(cache_dir: str | Path) -> CacheInfo:
    """Entries and bytes (from the shard files), hits/misses (from every session's stats)."""
    root = Path(cache_dir)
    info = CacheInfo(cache_dir=str(root))
    if not root.is_dir():
        return info
    present: set[str] = set()
    for shard in (root / "shards").glob("*/*.safetensors"):
        info.entries += 1
        info.bytes += shard.stat().st_size
        present.add(shard.stem)
    if (root / "index.jsonl").is_file():
        seen: set[str] = set()
        for rec in read_jsonl(root / "index.jsonl"):
            key = rec.get("key")
            if key in present and key not in seen:
                seen.add(key)
                enc = str(rec.get("encoder", "?"))
                info.by_encoder[enc] = info.by_encoder.get(enc, 0) + 1
    if (root / "stats.jsonl").is_file():
        for rec in read_jsonl(root / "stats.jsonl"):
            info.sessions += 1
            info.hits += int(rec.get("hits", 0))
            info.misses += int(rec.get("misses", 0))
            info.writes += int(rec.get("writes", 0))
    return info


DECODE_THREADS = "kvcap-train-decode"  # the prefetch threads' name (kvcap.video.prefetch)


@dataclass
class BadClip:
    """A clip left out: it could not be hashed or decoded."""

    item: Any  # kvcap.data.manifest.ManifestItem
    reason: str  # one line, starts with the path


@dataclass
class FillReport:
    """What one fill_cache() did: clips asked for, already cached, encoded now, and the bad ones."""

    total: int = 0
    cached_before: int = 0
    encoded: int = 0
    bad: list[BadClip] = field(default_factory=list)
    seconds: float = 0.0


def fill_cache(
    items: Sequence[Any],
    encode: Callable[[Any], Any],
    cache,
    *,
    frames: int,
    size: int,
    backend: str = "auto",
    batch_size: int = 8,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> FillReport:
    """Encode every clip of `items` that the cache lacks; broken videos are reported, not fatal.

    `encode(frames uint8 (B, T, S, S, 3)) -> (B, T, N, D)` is the frozen encoder (VisionEncoder.encode
    or Captioner.encode).
    """
    import numpy as np
    import torch

    from kvcap.video import sample_frames
    from kvcap.video.prefetch import decode_in_order

    start = time.perf_counter()
    report = FillReport(total=len(items))
    todo = _missing(items, cache, frames, report)
    keys = {item.id: key for item, key in todo}
    done = report.cached_before + len(report.bad)
    if progress:
        progress(done, report.total)

    batch: list[tuple[Any, Any]] = []

    def flush() -> None:
        if not batch:
            return
        clips = np.stack([s.frames for _, s in batch])  # (B, T, S, S, 3) uint8
        with torch.inference_mode():
            feats = encode(clips)  # (B, T, N, D)
        for (item, sampled), f in zip(batch, feats):
            cache.put(item.video, frames, f, torch.tensor(list(sampled.times), dtype=torch.float32), key=keys[item.id])
            report.encoded += 1
        batch.clear()

    decoded = decode_in_order([i for i, _ in todo],
                              lambda it: sample_frames(it.video, num_frames=frames, size=size, backend=backend),
                              workers, name=DECODE_THREADS)
    for item, sampled, error in decoded:
        if error is not None:
            report.bad.append(BadClip(item, one_line(error)))
        else:
            batch.append((item, sampled))
            if len(batch) >= batch_size:
                flush()
        done += 1
        if progress:
            progress(done, report.total)
    flush()
    report.seconds = time.perf_counter() - start
    return report


def _missing(items: Sequence[Any], cache, frames: int, report: FillReport) -> list[tuple[Any, str]]:
    """(clip, cache key) of each clip the cache lacks; clips already there are counted in `report`,
    clips that cannot even be hashed (missing, unreadable) are its bad ones."""
    todo: list[tuple[Any, str]] = []
    for item in items:
        try:
            key = cache.key_for(item.video, frames)
        except OSError as exc:
            report.bad.append(BadClip(item, f"{item.video}: {exc.strerror or one_line(exc)}"))
            continue
        if cache.shard_path(key).is_file():
            report.cached_before += 1
        else:
            todo.append((item, key))
    return todo
