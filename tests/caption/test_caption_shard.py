"""--shard i/n slicing and `kvcap caption merge` (no model, no video needed)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kvcap.caption.shard import Shard, ShardError, merge_shards, parse_shard, shard_from_env
from kvcap.cli import main


def test_parse_shard_accepts_i_of_n_and_names_the_problem():
    assert parse_shard("0/3") == Shard(0, 3)
    assert parse_shard(" 2 / 3 ") == Shard(2, 3)
    assert parse_shard(None) is None
    with pytest.raises(ShardError, match="i must be below n"):
        parse_shard("3/3")
    with pytest.raises(ShardError, match="expected i/n"):
        parse_shard("1of3")
    with pytest.raises(ShardError, match="at least 1"):
        parse_shard("0/0")


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_are_disjoint_cover_everything_and_are_balanced(count):
    items = [f"v{i:02d}.mp4" for i in range(17)]
    slices = [Shard(i, count).select(items) for i in range(count)]
    flat = [x for s in slices for x in s]
    assert sorted(flat) == items and len(flat) == len(set(flat))
    sizes = [len(s) for s in slices]
    assert max(sizes) - min(sizes) <= 1


def test_shard_from_accelerate_environment():
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "4"}) == Shard(1, 4)
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert shard_from_env({}) is None


def _write_part(out, index, count, records):
    path = out / f"captions.shard-{index}-of-{count}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _rec(video, status="ok"):
    return {"video": video, "status": status, "caption": "c" if status == "ok" else None, "segments": [],
            "duration": 1.0, "frame_times": [], "checkpoint": "x", "elapsed_s": 0.1,
            "error": None if status == "ok" else "bad"}


def test_merge_joins_parts_one_record_per_video(tmp_path):
    _write_part(tmp_path, 0, 2, [_rec("a.mp4", "error"), _rec("c.mp4"), _rec("a.mp4")])
    _write_part(tmp_path, 1, 2, [_rec("b.mp4"), _rec("d.mp4", "error")])
    report = merge_shards(tmp_path)
    lines = (tmp_path / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["video"] for r in records] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert records[0]["status"] == "ok"  # the later record for a.mp4 wins
    assert (report.records, report.ok, report.failed) == (4, 3, 1)


def test_merge_refuses_when_a_part_is_missing_and_names_it(tmp_path):
    _write_part(tmp_path, 0, 3, [_rec("a.mp4")])
    _write_part(tmp_path, 2, 3, [_rec("c.mp4")])
    with pytest.raises(ShardError, match=r"missing shard 1/3 \(captions\.shard-1-of-3\.jsonl\)"):
        merge_shards(tmp_path)
    assert not (tmp_path / "captions.jsonl").exists()


def test_merge_refuses_mixed_shard_counts_unless_told(tmp_path):
    _write_part(tmp_path, 0, 1, [_rec("a.mp4")])
    _write_part(tmp_path, 0, 2, [_rec("a.mp4")])
    _write_part(tmp_path, 1, 2, [_rec("b.mp4")])
    with pytest.raises(ShardError, match="different shard counts"):
        merge_shards(tmp_path)
    assert merge_shards(tmp_path, 2).records == 2


def test_cli_merge(tmp_path):
    runner = CliRunner()
    _write_part(tmp_path, 0, 2, [_rec("a.mp4")])
    result = runner.invoke(main, ["caption", "merge", str(tmp_path)])
    assert result.exit_code == 2
    assert "missing shard 1/2" in result.output
    _write_part(tmp_path, 1, 2, [_rec("b.mp4", "error")])
    result = runner.invoke(main, ["caption", "merge", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 videos (1 ok, 1 failed)" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(main, ["caption", "merge", str(empty)])
    assert result.exit_code == 2 and "no shard parts" in result.output
