"""A scriptable stand-in for `kvcap.model.captioner.Captioner` (simonw/llm's fake-model idea).

It has the surface the pipeline uses (`image_size`, `frames`, `encode`, `generate`) and checks
the shapes it is given, so pipeline-only tests (resume, kill, shards, batching) run in
milliseconds. The end-to-end CLI tests use the real tiny checkpoint instead.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Iterable

import numpy as np


class FakeCaptioner:
    """Captions you script: None -> one from the clip's mean brightness (differs per clip),
    a callable(brightness) -> str, or an iterable of strings used in order."""

    def __init__(self, script: Callable[[float], str] | Iterable[str] | None = None, *,
                 image_size: int = 32, frames: int = 4, delay_s: float = 0.0):
        self.image_size = image_size
        self.frames = frames
        self.delay_s = delay_s
        self._callable = script if callable(script) else None
        self._texts = iter(script) if script is not None and not callable(script) else None
        self.batches: list[int] = []  # batch size of each generate call
        self.frames_seen: list[int] = []  # T of each encode call

    def encode(self, frames) -> np.ndarray:
        clips = np.asarray(frames)  # (B, T, S, S, 3) uint8
        assert clips.ndim == 5 and clips.shape[-1] == 3, clips.shape
        assert clips.dtype == np.uint8, clips.dtype
        assert clips.shape[2] == clips.shape[3] == self.image_size, clips.shape
        self.frames_seen.append(clips.shape[1])
        return clips.mean(axis=(2, 3, 4), dtype=np.float64)[:, :, None, None]  # (B, T, 1, 1)

    def generate(self, features, gen) -> list[str]:
        if self.delay_s:
            time.sleep(self.delay_s)
        brightness = np.asarray(features).mean(axis=(1, 2, 3))  # (B,)
        self.batches.append(len(brightness))
        if self._callable is not None:
            return [self._callable(float(b)) for b in brightness]
        if self._texts is not None:
            return list(itertools.islice(self._texts, len(brightness)))
        return [f"밝기 {b:.1f}의 장면입니다." for b in brightness]
