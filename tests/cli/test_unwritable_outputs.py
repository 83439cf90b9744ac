"""Every output that can't be written is one line naming it, exit 2, before any real work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main

TINY_TOML = str(Path(__file__).resolve().parents[2] / "examples" / "tiny.toml")


def kvcap_in_process(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def videos(tmp_path, video_zoo):
    import shutil

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(video_zoo.clips["h264"], folder / "a.mp4")
    return folder


@pytest.mark.parametrize("where", ["readonly_dir", "immutable_dir"])
def test_caption_into_an_unwritable_folder(request, where, videos, tiny_checkpoint):
    place = request.getfixturevalue(where)
    for out in (place, place / "sub" / "deeper"):
        result = kvcap_in_process("caption", videos, "--checkpoint", tiny_checkpoint, "-o", out)
        assert_one_line(result, f"--output {out}", "cannot write")


def test_caption_output_naming_a_file_or_under_a_file(tmp_path, videos, tiny_checkpoint):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert_one_line(kvcap_in_process("caption", videos, "--checkpoint", tiny_checkpoint, "-o", blocker),
                    str(blocker), "not a folder")
    assert_one_line(kvcap_in_process("caption", videos, "--checkpoint", tiny_checkpoint, "-o", blocker / "sub"),
                    "not a folder")


def test_caption_check_leaves_no_folder_behind(tmp_path, tiny_checkpoint):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out" / "nested"
    result = kvcap_in_process("caption", empty, "--checkpoint", tiny_checkpoint, "-o", out)
    assert_one_line(result, "no videos found")
    assert not (tmp_path / "out").exists()


def test_score_per_clip_on_a_read_only_file_system(tmp_path, readonly_dir):
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_text('{"id": "a", "caption": "바다가 보인다"}\n', encoding="utf-8")
    refs.write_text('{"id": "a", "video": "a.mp4", "caption": "바다가 보인다"}\n', encoding="utf-8")
    result = kvcap_in_process("score", preds, "--refs", refs, "--metrics", "meteor", "--tokenizer", "whitespace",
                              "--per-clip", readonly_dir / "x.jsonl")
    assert_one_line(result, "--per-clip", str(readonly_dir))


def test_train_run_on_a_read_only_file_system(readonly_dir, synth_dataset):
    result = kvcap_in_process("train", "--stage", "1", "--data", synth_dataset.manifest, "--run", readonly_dir / "run",
                              "--config", TINY_TOML)
    assert_one_line(result, "--run", "Read-only file system")


def test_demo_out_in_an_immutable_folder(immutable_dir):
    result = kvcap_in_process("demo", "--out", immutable_dir / "demo", "--count", "1")
    assert_one_line(result, "--out", "demo", "cannot write")
