"""A clip from a zip part trains and captions like any other: import -> train (feature cache,
eval captions) -> `kvcap caption` on the val manifest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aihub_trees import aihub_layout
from kvcap.cli import main
from kvcap.data.aihub import import_aihub
from kvcap.data.manifest import read_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from train_helpers import rows, train_args  # noqa: E402


@pytest.mark.slow
def test_zipped_clips_train_and_caption(tmp_path, tiny_models):
    from fixtures.video import write_clip

    clip = write_clip(tmp_path / "clip.mp4", "h264", width=64, height=48, seconds=1.0)
    other = write_clip(tmp_path / "other.mp4", "mpeg4", width=64, height=48, seconds=1.0)
    src = tmp_path / "aihub"
    aihub_layout(src, clip, {"01": ("train", ["t1", "t2"], "stored"), "02v": ("val", ["v1"], "stored")})
    aihub_layout(src, other, {"02": ("train", ["t3", "t4"], None), "03v": ("val", ["v2"], "deflated")})
    report = import_aihub(src, tmp_path / "data")  # no --unpack-to: the deflated member is read in place
    assert report.counts == {"train": 4, "val": 2, "test": 0} and report.zipped_videos == 4
    manifest = tmp_path / "data" / "manifest.jsonl"

    runner = CliRunner()
    args = train_args(tmp_path, manifest, "train.max_steps=2", "train.batch_size=2", "data.num_workers=1")
    result = runner.invoke(main, ["train", "--stage", "1", "--run", "zip", *args])
    assert result.exit_code == 0, result.output
    assert "bad clip" not in result.output
    run = tmp_path / "runs" / "zip"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_clips"] == 4 and summary.get("bad_clips", 0) == 0
    assert [r["step"] for r in rows(run, "train")] == [1, 2]
    # The feature cache holds the zipped clips under their member references.
    index = [json.loads(line) for line in (tmp_path / "cache" / "index.jsonl").read_text().splitlines()]
    assert sum("::" in rec["video"] for rec in index) == 4
    # The eval captioned both val clips (both zipped).
    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in predictions) == ["v1", "v2"] and all(p["caption"] is not None for p in predictions)

    out = tmp_path / "captions"
    captioned = runner.invoke(main, ["caption", str(tmp_path / "data" / "val.jsonl"), "--checkpoint", str(run / "best"),
                                     "-o", str(out), "--set", "generation.max_new_tokens=4"])
    assert captioned.exit_code == 0, captioned.output
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    # Named relative to the deepest folder holding every clip; a member as `ARCHIVE.zip/MEMBER`.
    assert sorted(r["video"] for r in records) == ["VS_02v.zip/v1.mp4", "VS_03v.zip/v2.mp4"]
    assert all(r["status"] == "ok" for r in records)
    assert (out / "VS_02v.zip" / "v1.srt").is_file()
    # A member named on the command line captions too.
    member = str(read_manifest(tmp_path / "data" / "val.jsonl")[0].video)
    single = runner.invoke(main, ["caption", member, "--checkpoint", str(run / "best"), "-o", str(tmp_path / "one"),
                                  "--set", "generation.max_new_tokens=4"])
    assert single.exit_code == 0, single.output
    assert [json.loads(line)["video"] for line in (tmp_path / "one" / "captions.jsonl").read_text().splitlines()] == ["VS_02v.zip/v1.mp4"]
