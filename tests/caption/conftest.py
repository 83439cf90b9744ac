"""Folders of clips for the caption tests, built from the shared `video_zoo` (copies only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .fake_captioner import FakeCaptioner

# zoo names copied into the mixed folder, and where they land (nested, to test mirroring)
GOOD = {"h264": "h264.mp4", "mpeg4": "sub/mpeg4.avi", "vp9": "sub/deeper/vp9.webm", "korean": "한국어/바다 01.mp4"}
BROKEN = {"empty": "broken/empty.mp4", "text": "broken/text.mp4", "truncated": "broken/truncated.mp4"}


def copy_clip(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def mixed_folder(tmp_path, video_zoo) -> Path:
    """videos/ with 4 good clips (nested, one Korean name) and 3 broken files."""
    root = tmp_path / "videos"
    for name, rel in GOOD.items():
        copy_clip(video_zoo.clips[name], root / rel)
    for name, rel in BROKEN.items():
        copy_clip(video_zoo.broken[name], root / rel)
    return root


@pytest.fixture
def h264_folder(tmp_path, video_zoo):
    """A factory: `h264_folder(n)` -> a folder of n copies of the zoo's h264 clip."""

    def make(count: int, name: str = "many") -> Path:
        root = tmp_path / name
        for i in range(count):
            copy_clip(video_zoo.clips["h264"], root / f"clip{i:02d}.mp4")
        return root

    return make


@pytest.fixture
def fake_captioner() -> FakeCaptioner:
    return FakeCaptioner()
