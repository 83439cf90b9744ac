"""list_videos: recursive, sorted, hidden skipped, broken-but-named entries kept."""

import os
from pathlib import Path

from kvcap.video import list_videos


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_recursive_sorted_extensions_case_insensitive(tmp_path):
    names = ["b.mp4", "a.MOV", "sub/c.mkv", "sub/deeper/d.AVI", "e.webm", "f.m4v", "notes.txt", "g.mp3", "h.jpg"]
    for name in names:
        _touch(tmp_path / name)
    found = [p.relative_to(tmp_path).as_posix() for p in list_videos([tmp_path])]
    assert found == ["a.MOV", "b.mp4", "e.webm", "f.m4v", "sub/c.mkv", "sub/deeper/d.AVI"]


def test_hidden_files_and_folders_skipped(tmp_path):
    _touch(tmp_path / ".hidden.mp4")
    _touch(tmp_path / ".cache" / "x.mp4")
    _touch(tmp_path / "visible" / "y.mp4")
    assert list_videos(tmp_path) == [tmp_path / "visible" / "y.mp4"]


def test_unreadable_entries_with_video_names_are_listed(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    _touch(tmp_path / "dir.mp4" / "inner.mp4")  # a "video" directory is not searched
    os.symlink(tmp_path / "missing.mp4", tmp_path / "link.mp4")
    assert list_videos([tmp_path]) == [tmp_path / "dir.mp4", tmp_path / "link.mp4"]


def test_explicit_paths_kept_in_order_without_duplicates(tmp_path):
    a = _touch(tmp_path / "a.mp4")
    missing = tmp_path / "nope.mp4"
    out = list_videos([missing, a, tmp_path, str(a)])
    assert out == [missing, a]


def test_deterministic_with_korean_names_and_symlink_cycle(tmp_path):
    _touch(tmp_path / "나" / "영상 2.mp4")
    _touch(tmp_path / "가" / "영상 1.mp4")
    os.symlink(tmp_path, tmp_path / "가" / "loop")  # must not recurse forever
    first = list_videos(tmp_path)
    assert first == list_videos(tmp_path)
    assert [p.name for p in first][:2] == ["영상 1.mp4", "영상 2.mp4"]
