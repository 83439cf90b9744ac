"""`kvcap data import-aihub`: a fake AI-Hub tree written here, imported into manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.data.aihub import import_aihub
from kvcap.data.aihub_labels import AIHubImportError, label_caption, split_from_parts
from kvcap.data.manifest import read_manifest


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _label(caption_obj: dict) -> str:
    return json.dumps(caption_obj, ensure_ascii=False)


def _caption(data, *fields):
    return label_caption(data, *fields)[0]


def test_split_folders_pairing_and_report(tmp_path):
    src = tmp_path / "aihub"
    # The dataset's own split, in AI-Hub's folder naming.
    for i in range(3):
        _write(src / "labels" / "Training" / "TL_city" / f"clip{i}.json", _label({"annotation": {"description_kr": f"도시 풍경 {i}"}}))
        _write(src / "videos" / "Training" / "TS_city" / f"clip{i}.mp4", b"\x00fake-mp4")
    _write(src / "labels" / "Validation" / "VL_sea" / "sea0.json", _label({"annotation": {"description_kr": "바다 풍경"}}))
    _write(src / "videos" / "Validation" / "VS_sea" / "sea0.mp4", b"\x00fake-mp4")
    # Problems the report must name.
    _write(src / "labels" / "Training" / "TL_city" / "orphan_label.json", _label({"caption": "영상 없음"}))
    _write(src / "videos" / "Training" / "TS_city" / "orphan_video.mp4", b"\x00")
    _write(src / "labels" / "Training" / "TL_city" / "broken.json", '{"annotation": {"description_kr": ')
    _write(src / "videos" / "Training" / "TS_city" / "broken.mp4", b"\x00")
    _write(src / "labels" / "Training" / "TL_city" / "nocap.json", _label({"annotation": {"other": 1}}))
    _write(src / "videos" / "Training" / "TS_city" / "nocap.mp4", b"\x00")

    out = tmp_path / "data"
    report = import_aihub(src, out)
    assert report.counts == {"train": 3, "val": 1, "test": 0}
    assert report.split_source == "dataset"
    assert [p.name for p in report.unpaired_labels] == ["orphan_label.json"]
    assert [p.name for p in report.unpaired_videos] == ["orphan_video.mp4"]
    bad = {p.name: reason for p, reason in report.unreadable}
    assert set(bad) == {"broken.json", "nocap.json"}
    assert "not valid JSON" in bad["broken.json"] and "no caption" in bad["nocap.json"]

    train = read_manifest(out / "train.jsonl")
    val = read_manifest(out / "val.jsonl")
    both = read_manifest(out / "manifest.jsonl")
    assert [it.id for it in train] == ["clip0", "clip1", "clip2"]
    assert [(it.id, it.caption, it.split) for it in val] == [("sea0", "바다 풍경", "val")]
    assert {it.id: it.split for it in both} == {"clip0": "train", "clip1": "train", "clip2": "train", "sea0": "val"}
    # Paths resolve back to the real files (stored relative to the manifest).
    assert train[0].video.resolve() == (src / "videos" / "Training" / "TS_city" / "clip0.mp4").resolve()
    assert train[0].caption == "도시 풍경 0"


def test_hashed_split_when_the_dataset_has_none(tmp_path):
    src = tmp_path / "flat"
    for i in range(20):
        _write(src / "labels" / f"s{i:02d}.json", _label({"annotation": {"description_kr": f"설명 {i}"}}))
        _write(src / "videos" / f"s{i:02d}.mp4", b"\x00v")
    a = import_aihub(src, tmp_path / "a", val_count=5, seed=7)
    import_aihub(src, tmp_path / "b", val_count=5, seed=7)
    import_aihub(src, tmp_path / "c", val_count=5, seed=8)
    assert a.split_source == "hashed"
    assert a.counts["train"] == 15 and a.counts["val"] == 5
    val_a = [it.id for it in read_manifest(tmp_path / "a" / "val.jsonl")]
    assert val_a == [it.id for it in read_manifest(tmp_path / "b" / "val.jsonl")]  # deterministic per seed
    assert val_a != [it.id for it in read_manifest(tmp_path / "c" / "val.jsonl")]
    # A fraction: each clip on its own; a tiny set still gets one val clip.
    few = import_aihub(src, tmp_path / "d", val_fraction=0.01, seed=7)
    assert few.counts["val"] == 1 and few.counts["train"] == 19


def test_caption_only_from_the_named_fields_and_split_words(tmp_path):
    assert _caption({"annotation": {"description_kr": " 가 ", "description": "나"}}) == "가"
    assert _caption({"annotation": {"description": "나"}}) is None  # no silent fallback
    assert _caption({"annotation": {"description_kr": "  ", "description": "나"}}) is None
    assert _caption({"annotation": {"description": "나"}}, ("annotation.description",)) == "나"
    assert _caption({"annotations": [{"description_kr": "다"}]}, ("annotations.0.description_kr",)) == "다"
    assert _caption({"captions": ["마", "바"]}, ("captions",)) == ["마", "바"]
    assert _caption([1, 2]) is None
    caption, why = label_caption({"annotation": {"description_kr": 3}})
    assert caption is None and why == "annotation.description_kr is a int, not text"
    assert split_from_parts(("Validation",)) == "val"
    assert split_from_parts(("VL_forest",)) == "val"
    assert split_from_parts(("TL_forest",)) == "train"
    assert split_from_parts(("misc",)) is None
    assert split_from_parts(("1.Training", "원천데이터")) == "train"
    assert split_from_parts(("2.Validation",)) == "val"


def test_cli_reports_and_errors(tmp_path):
    src = tmp_path / "aihub"
    _write(src / "labels" / "a.json", _label({"annotation": {"description_kr": "하나"}}))
    _write(src / "videos" / "a.mp4", b"\x00v")
    _write(src / "labels" / "b.json", "{broken")
    _write(src / "videos" / "b.mp4", b"\x00v")
    runner = CliRunner()
    result = runner.invoke(main, ["data", "import-aihub", str(src), "--out", str(tmp_path / "out"), "--val-fraction", "0"])
    assert result.exit_code == 0, result.output
    assert "imported 1 clips" in result.output
    assert "b.json: not valid JSON" in result.output
    missing = runner.invoke(main, ["data", "import-aihub", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert missing.exit_code == 2 and "not a directory" in missing.output
    (tmp_path / "empty").mkdir()
    with pytest.raises(AIHubImportError, match="no label .json files and no videos"):
        import_aihub(tmp_path / "empty", tmp_path / "o3")
