"""Manifest JSONL: round trip, relative paths, and one-line errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvcap.data.manifest import ManifestError, ManifestItem, read_manifest, write_manifest


def _write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = json.dumps({"id": "a", "video": "clips/a.mp4", "caption": "바다 풍경이다.", "split": "train"}, ensure_ascii=False)


def test_round_trip_stores_video_relative_and_reads_it_back_absolute(tmp_path):
    root = tmp_path / "data"
    items = [
        ManifestItem("a", root / "clips" / "a.mp4", "맑은 밤의 바다 풍경이다.", "train", {"time_of_day": "밤"}),
        ManifestItem("b", root / "sub dir" / "영상 b.mp4", ["첫째 참조.", "둘째 참조."], "val"),
    ]
    write_manifest(root / "manifest.jsonl", items)
    raw = [json.loads(line) for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["video"] for r in raw] == ["clips/a.mp4", "sub dir/영상 b.mp4"]
    assert "attributes" not in raw[1]  # empty attributes are not written
    back = read_manifest(root / "manifest.jsonl")
    assert [(i.id, i.video, i.caption, i.split, i.attributes) for i in back] == [
        ("a", (root / "clips" / "a.mp4").resolve(), "맑은 밤의 바다 풍경이다.", "train", {"time_of_day": "밤"}),
        ("b", (root / "sub dir" / "영상 b.mp4").resolve(), ["첫째 참조.", "둘째 참조."], "val", {}),
    ]
    assert back[0].references == ["맑은 밤의 바다 풍경이다."] and back[1].references == ["첫째 참조.", "둘째 참조."]


def test_moved_dataset_folder_still_resolves(tmp_path):
    write_manifest(tmp_path / "one" / "manifest.jsonl", [ManifestItem("a", tmp_path / "one" / "x.mp4", "c", "train")])
    (tmp_path / "one").rename(tmp_path / "two")
    assert read_manifest(tmp_path / "two" / "manifest.jsonl")[0].video == (tmp_path / "two" / "x.mp4").resolve()


def test_blank_lines_are_skipped(tmp_path):
    items = read_manifest(_write_lines(tmp_path / "m.jsonl", "", GOOD, "   "))
    assert [i.id for i in items] == ["a"]


@pytest.mark.parametrize(
    "second_line, reason",
    [
        ("{not json", "2: not valid JSON"),
        ("[1, 2]", "2: expected a JSON object, got list"),
        ('{"id": "b", "video": "b.mp4", "split": "train"}', "2: missing key 'caption'"),
        ('{"id": 3, "video": "b.mp4", "caption": "x", "split": "train"}', "2: key 'id' must be a string, got int"),
        ('{"id": "b", "video": "b.mp4", "caption": 5, "split": "train"}', "2: key 'caption' must be a string or a list of strings, got int"),
        ('{"id": "b", "video": "b.mp4", "caption": ["ok", 1], "split": "train"}', "2: key 'caption'[1] must be a string, got int"),
        ('{"id": "b", "video": "b.mp4", "caption": [], "split": "train"}', "2: key 'caption' is an empty list"),
        ('{"id": "b", "video": "b.mp4", "caption": "  ", "split": "train"}', "2: key 'caption' is empty"),
        ('{"id": "b", "video": "b.mp4", "caption": "x", "split": "dev"}', "2: key 'split' is 'dev'; expected one of train, val, test"),
        ('{"id": "b", "video": "b.mp4", "caption": "x", "split": "val", "attributes": [1]}', "2: key 'attributes' must be an object, got list"),
        ('{"id": "a", "video": "b.mp4", "caption": "x", "split": "val"}', "2: duplicate id 'a' (first on line 1)"),
    ],
)
def test_bad_line_names_file_line_and_reason(tmp_path, second_line, reason):
    path = _write_lines(tmp_path / "m.jsonl", GOOD, second_line)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{reason}")
    assert "\n" not in message


def test_missing_empty_and_directory_manifests(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
    empty = _write_lines(tmp_path / "empty.jsonl", "", "")
    with pytest.raises(ManifestError, match=r"empty\.jsonl: empty manifest"):
        read_manifest(empty)
    with pytest.raises(ManifestError, match="is a directory"):
        read_manifest(tmp_path)
    (tmp_path / "latin.jsonl").write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(tmp_path / "latin.jsonl")


def test_write_refuses_duplicates_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [ManifestItem("a", tmp_path / "a.mp4", "c", "train")])
    before = path.read_bytes()
    with pytest.raises(ManifestError, match="duplicate id 'x'"):
        write_manifest(path, [ManifestItem("x", tmp_path / "a.mp4", "c", "train")] * 2)
    with pytest.raises(ManifestError, match="split 'dev'"):
        write_manifest(path, [ManifestItem("x", tmp_path / "a.mp4", "c", "dev")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # no temp files left
