"""What `kvcap caption` says: plurals, files that are not videos, a --frames the model can't take."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.video import VIDEO_EXTENSIONS, list_videos


@pytest.fixture(autouse=True)
def _no_project_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def invoke(*args):
    return CliRunner().invoke(main, ["caption", *map(str, args)])


def test_one_video_and_files_that_are_not_videos(tmp_path, video_zoo, tiny_checkpoint):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], folder / "a.mp4")
    (folder / "notes.txt").write_text("x")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8")
    result = invoke(folder, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "captioning 1 video " in result.output
    assert "skipped 2 files that are not videos (--verbose lists them)" in result.output
    verbose = invoke(folder, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out2", "--device", "cpu", "-v")
    assert str(folder / "notes.txt") in verbose.output and str(folder / "cover.jpg") in verbose.output


def test_frames_other_than_the_checkpoints_is_refused_up_front(tmp_path, video_zoo, tiny_checkpoint):
    from kvcap.model.checkpoint import read_spec

    trained = read_spec(tiny_checkpoint)["frames"]
    folder = tmp_path / "v"
    folder.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], folder / "a.mp4")
    result = invoke(folder, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out", "--frames", trained + 1)
    assert result.exit_code == 2, result.output
    assert "--frames" in result.output and f"trained on {trained} frames" in result.output
    assert not (tmp_path / "out").exists()  # refused before any work
    same = invoke(folder, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "out", "--frames", trained)
    assert same.exit_code == 0, same.output


def test_transport_streams_and_other_containers_are_found(tmp_path):
    names = ["a.ts", "b.MTS", "c.m2ts", "d.flv", "e.wmv", "f.mpg", "g.mp4", "h.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    skipped = []
    found = [p.name for p in list_videos(tmp_path, skipped=skipped)]
    assert found == names[:-1]
    assert [p.name for p in skipped] == ["h.txt"]
    assert {".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg"} <= VIDEO_EXTENSIONS


def test_aihub_import_uses_the_same_list():
    from kvcap.data import aihub_sources  # where the importer finds videos, folders and zips alike

    assert aihub_sources.VIDEO_EXTENSIONS is VIDEO_EXTENSIONS
