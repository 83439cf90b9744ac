"""A train/val split that never moves: each clip is placed by a hash of its own stable id.

    unit(id, seed) = sha256("<seed>\\0<id>") read as a number in [0, 1)

- `val_fraction=f`: a clip is val iff its unit < f. Whether one clip is val depends on nothing
  but its id and the seed, so adding or removing clips never moves another clip.
- `val_count=N`: the N clips with the lowest units are val (ties broken by id). Adding a clip
  moves at most one other (the one it pushes out of the lowest N); removing a val clip moves
  exactly one train clip in. This reproduces an exact count such as the seed's 1,068 of 9,631.

A `random.shuffle` of the sorted ids (what kvcap did before) reshuffles everything when one id
is added or removed, so a checkpoint from an earlier import is evaluated on its training data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from kvcap.errors import KvcapError


class SplitError(KvcapError, ValueError):
    """The requested split cannot be made (one line)."""


def unit(clip_id: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (id, seed)."""
    digest = hashlib.sha256(f"{seed}\0{clip_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    ids: Iterable[str], *, seed: int = 42, val_fraction: float = 0.1, val_count: int | None = None,
) -> dict[str, str]:
    """{id: "train" | "val"} by each id's hash (see the module doc).

    With `val_fraction > 0` and at least two clips, an outcome with no val clip (or no train
    clip) gives the lowest-hash clip to val (the highest to train), so tiny datasets still have
    both sides; that changes at most one clip's side.
    """
    ids = sorted(set(ids))
    if not ids:
        return {}
    units = {i: unit(i, seed) for i in ids}
    if val_count is not None:
        if val_count < 0:
            raise SplitError(f"--val-count must be >= 0, got {val_count}")
        if val_count >= len(ids) and val_count > 0:
            raise SplitError(f"--val-count {val_count} leaves no training clip (only {len(ids)} clips without a split of their own)")
        ranked = sorted(ids, key=lambda i: (units[i], i))
        val = set(ranked[:val_count])
        return {i: "val" if i in val else "train" for i in ids}
    if not 0 <= val_fraction < 1:
        raise SplitError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    out = {i: "val" if units[i] < val_fraction else "train" for i in ids}
    if val_fraction > 0 and len(ids) > 1:
        if "val" not in out.values():
            out[min(ids, key=lambda i: (units[i], i))] = "val"
        elif "train" not in out.values():
            out[max(ids, key=lambda i: (units[i], i))] = "train"
    return out
