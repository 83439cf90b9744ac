"""Caption jobs for the review tests: the real pipeline (decode, sink, ledger, job.json) with the
scriptable fake model, on the shared video zoo's clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from caption.fake_captioner import FakeCaptioner


def caption_job(paths, out: Path, captioner: FakeCaptioner | None = None, **options) -> list:
    """Run `caption_folder` over `paths` into `out`; the results."""
    from kvcap.caption.pipeline import CaptionOptions, caption_folder

    options.setdefault("batch_size", 2)
    options.setdefault("workers", 1)
    options.setdefault("formats", "jsonl")
    return list(caption_folder(paths, captioner or FakeCaptioner(), out, CaptionOptions(**options)))


def copy_clip(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def strip_tiles(path: Path, tile: int) -> np.ndarray:
    """A strip JPEG cut back into its tiles: (N, tile, tile, 3) uint8."""
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))  # (tile, N*tile, 3)
    assert image.shape[0] == tile and image.shape[1] % tile == 0, image.shape
    return image.reshape(tile, -1, tile, 3).transpose(1, 0, 2, 3)


def assert_tiles_match(tiles: np.ndarray, frames: np.ndarray, tolerance: float = 6.0) -> None:
    """Each tile equals its frame within JPEG's loss (mean absolute difference per tile)."""
    assert tiles.shape == frames.shape, (tiles.shape, frames.shape)
    for i, (tile, frame) in enumerate(zip(tiles, frames)):
        diff = float(np.abs(tile.astype(np.int16) - frame.astype(np.int16)).mean())
        assert diff <= tolerance, f"tile {i} differs from the sampled frame by {diff:.1f} on average"


@pytest.fixture
def zoo_folder(tmp_path, video_zoo):
    """A factory: {relative name: zoo clip name} -> a folder holding those copies."""

    def make(files: dict[str, str], name: str = "videos") -> Path:
        root = tmp_path / name
        for rel, clip in files.items():
            source = video_zoo.broken[clip] if clip in video_zoo.broken else video_zoo.clips[clip]
            copy_clip(source, root / rel)
        return root

    return make


@pytest.fixture
def h264_folder_for_review(tmp_path, video_zoo):
    """A factory: n copies of the zoo's h264 clip in one folder."""

    def make(count: int) -> Path:
        root = tmp_path / "many"
        for i in range(count):
            copy_clip(video_zoo.clips["h264"], root / f"clip{i:03d}.mp4")
        return root

    return make
