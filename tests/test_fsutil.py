"""Atomic writes leave either the old file or the new one, with normal permissions."""

import os
import stat

import pytest

from kvcap.fsutil import atomic_dir, atomic_write_text, repair_jsonl_tail
from kvcap.records import read_jsonl


def test_atomic_write_replaces_and_uses_umask_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    atomic_write_text(target, "새 내용")
    assert target.read_text(encoding="utf-8") == "새 내용"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp file left


def test_atomic_dir_keeps_old_on_error(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "x").write_text("2")
            raise RuntimeError("boom")
    assert (target / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_jsonl_torn_tail_is_skipped_then_repaired(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    repair_jsonl_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n'
    path.write_bytes(b'{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2: not valid JSON"):
        read_jsonl(path, strict=True)
