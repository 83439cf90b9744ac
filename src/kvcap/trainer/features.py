"""Clip features for training: from the feature cache, or decoded and encoded on the fly.

    open_features(spec, captioner, acc, ...) the trainer's source: the cache filled (kvcap.data.cache.fill_cache),
                                             bad clips out
    FeatureSource.cached(...) / .live(...)  -> batches of (features (B, T, N, D), items)

With the cache (the default), every clip is decoded and encoded once, before the first step;
each step then only reads a safetensors file. A clip whose video is missing or broken fails
here, once, with its one-line reason, and is left out of training (the count is shown).
Without the cache, every step decodes and encodes its clips again (what `bench/train.py`
measures against); broken clips are dropped from their batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from kvcap.console import first_of
from kvcap.data.cache import DECODE_THREADS, BadClip, fill_cache
from kvcap.data.manifest import ManifestItem
from kvcap.errors import one_line
from kvcap.video.prefetch import decode_in_order


@dataclass(frozen=True)
class FeatureSpec:
    """Where the trainer's features come from, as the recipe chose it from the config."""

    use_cache: bool  # data.use_cache: encode every clip once before training, or every step
    cache_dir: str  # data.cache_dir
    backend: str  # video.backend
    workers: int  # data.num_workers: decode threads
    batch_size: int  # train.batch_size: clips per encode batch while filling the cache
    manifest: str  # data.manifest, named when none of its training clips can be read


def choose_caption(item: ManifestItem, epoch: int) -> str:
    """The reference trained on this epoch (several references take turns)."""
    refs = item.references
    return refs[epoch % len(refs)]


class FeatureSource:
    """Batches of features for lists of clips, read from the cache or computed live."""

    def __init__(self, *, cache=None, encode=None, frames: int, size: int, backend: str = "auto", workers: int = 2):
        self.cache = cache
        self.encode = encode
        self.frames, self.size, self.backend, self.workers = frames, size, backend, workers
        self.dropped: list[BadClip] = []  # live mode: clips that failed to decode

    @property
    def cached(self) -> bool:
        return self.cache is not None

    def batches(self, groups: Iterable[list[ManifestItem]], device) -> Iterator[tuple[Any, list[ManifestItem]]]:
        """For each group of clips: (features (B, T, N, D) on `device`, the clips that made it)."""
        import torch

        groups = list(groups)
        if self.cached:
            for group in groups:
                feats, kept = [], []
                for item in group:
                    got = self.cache.get(item.video, self.frames)
                    if got is None:  # vanished since the fill: skip rather than crash
                        self.dropped.append(BadClip(item, f"{item.video}: features missing from the cache"))
                        continue
                    feats.append(got[0])
                    kept.append(item)
                yield (torch.stack(feats).to(device) if kept else None), kept
            return
        import numpy as np

        from kvcap.video import sample_frames

        flat = [item for group in groups for item in group]
        decoded = decode_in_order(flat, lambda it: sample_frames(it.video, num_frames=self.frames, size=self.size,
                                                                 backend=self.backend),
                                  self.workers, lookahead=max(8, 2 * max((len(g) for g in groups), default=1)),
                                  name=DECODE_THREADS)

        def emit(done: list):
            with torch.no_grad():
                feats = self.encode(np.stack([sampled.frames for _, sampled in done]))  # (B, T, N, D)
            return feats.to(device), [item for item, _ in done]

        # Decoding runs ahead across group boundaries; a group is emitted when its last clip is in.
        done: list = []
        decoded_iter = iter(decoded)
        for group in groups:
            for _ in group:
                item, sampled, error = next(decoded_iter)
                if error is not None:
                    self.dropped.append(BadClip(item, one_line(error)))
                else:
                    done.append((item, sampled))
            yield emit(done) if done else (None, [])
            done = []


def epoch_order(n: int, epoch: int, seed: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This rank's batches (lists of clip indices) for `epoch`: a permutation seeded by (seed, epoch).

    Every rank gets the same number of batches (the permutation wraps around to pad), so DDP
    ranks always step together.
    """
    import torch

    if n <= 0:
        return []
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    per_rank = -(-n // world)
    total = per_rank * world
    order = (order * (-(-total // n)))[:total]
    mine = order[rank::world]
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


@dataclass
class TrainFeatures:
    """What the trainer trains and evaluates on, once the features are ready."""

    source: FeatureSource
    cache: Any  # kvcap.data.cache.FeatureCache, or None without the cache
    train_items: list[ManifestItem]
    val_items: list[ManifestItem]
    bad_clips: int = 0


def open_features(spec: FeatureSpec, captioner, acc, train_items, val_items, *, say: Callable[[str], None],
                  bar) -> TrainFeatures:
    """Fill the feature cache for train + val (every rank its local share, then all read all of
    it) and leave out the clips that failed; without the cache, a live source. `bar(total, desc,
    disable=)` makes a progress bar. TrainError when no training clip can be read."""
    import os

    common = dict(frames=captioner.frames, size=captioner.image_size, backend=spec.backend)
    if not spec.use_cache:
        say("features: no cache (data.use_cache = false): decoding and encoding every step")
        source = FeatureSource(encode=captioner.encode, workers=spec.workers, **common)
        return TrainFeatures(source, None, list(train_items), list(val_items))
    from kvcap.data.cache import FeatureCache

    cache = FeatureCache(spec.cache_dir, captioner.vision.key)
    everything = list(train_items) + list(val_items)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes if acc.num_processes else 1))
    mine = everything[acc.local_process_index::max(1, local_world)]
    progress_bar = bar(len(mine), "features", disable=not acc.is_main_process)
    last = [0]

    def progress(done: int, total: int) -> None:
        progress_bar.update(done - last[0])
        last[0] = done

    report = fill_cache(mine, captioner.encode, cache, batch_size=spec.batch_size,
                        workers=spec.workers, progress=progress, **common)
    progress_bar.close()
    acc.wait_for_everyone()
    # Every rank decides the same way: a clip trains iff its features are in the cache now.
    ok = {it.id for it in everything if _safe_contains(cache, it, captioner.frames)}
    bad = [it for it in everything if it.id not in ok]
    reasons = {b.item.id: b.reason for b in report.bad}
    say(f"features: {report.cached_before} cached, {report.encoded} encoded in {report.seconds:.1f}s"
        + (f", {len(bad)} bad clip(s) skipped" if bad else "") + f" ({spec.cache_dir})")
    for line in first_of([f"skipped {it.id}: {reasons.get(it.id, f'{it.video}: unreadable')}" for it in bad], 10,
                         " skipped"):
        say(f"  {line}")
    train_ok = [it for it in train_items if it.id in ok]
    if not train_ok:
        from kvcap.trainer.rundir import TrainError

        raise TrainError(f"{spec.manifest}: no training clip could be read (all failed, see above)")
    return TrainFeatures(FeatureSource(cache=cache, **common), cache, train_ok, [it for it in val_items if it.id in ok],
                         bad_clips=len(bad))


def _safe_contains(cache, item, frames: int) -> bool:
    try:
        return cache.contains(item.video, frames)
    except OSError:
        return False
