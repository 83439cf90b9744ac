"""`kvcap data import-aihub` on trees as downloaded: zipped parts (stored and deflated) beside
unpacked ones, both layouts, a split that never moves, skips with reasons, the summary table."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from aihub_trees import LABELS, SOURCES, TRAIN, VAL, aihub_layout, caption_of, flat_layout, label_json, write_part
from kvcap.cli import main
from kvcap.data.aihub import import_aihub
from kvcap.data.aihub_labels import AIHubImportError
from kvcap.data.manifest import read_manifest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    from fixtures.video import write_clip

    return write_clip(tmp_path_factory.mktemp("aihub-clip") / "clip.mp4", "h264", width=64, height=48, seconds=1.0)


def _splits(manifest: Path) -> dict[str, str]:
    return {it.id: it.split for it in read_manifest(manifest)}


def test_aihub_layout_with_zipped_parts_keeps_every_clip_and_its_split(tmp_path, tiny_clip):
    from kvcap.video import probe, sample_frames

    src = tmp_path / "aihub"
    expected = aihub_layout(src, tiny_clip, {
        "01": ("train", ["a1", "a2"], None),          # unpacked folders
        "02": ("train", ["b1", "b2"], "stored"),      # TS_02.zip / TL_02.zip
        "03": ("train", ["c1"], "deflated"),          # compressed videos: unpacked once
        "01v": ("val", ["v1"], "stored"),
        "02v": ("val", ["v2"], None),
    })
    out = tmp_path / "out"
    report = import_aihub(src, out, unpack_to=tmp_path / "unpacked", val_count=3)
    assert report.split_source == "dataset"
    assert report.notes == ["--val-count 3 not used: every clip has the dataset's own split"]
    assert _splits(out / "manifest.jsonl") == expected
    assert report.counts == {"train": 5, "val": 2, "test": 0}
    assert report.zips == 6 and report.zipped_videos == 3 and report.unpacked == 1 and not report.skipped
    items = {it.id: it for it in read_manifest(out / "manifest.jsonl")}
    assert str(items["b1"].video).endswith(f"{SOURCES}/TS_02.zip::b1.mp4")  # read in place
    assert items["c1"].video == (tmp_path / "unpacked" / "TS_03" / "c1.mp4").resolve()
    assert items["c1"].video.read_bytes() == tiny_clip.read_bytes()
    assert items["b1"].caption == caption_of("b1")
    # The stored member is a video like any other.
    assert probe(items["b1"].video).duration == pytest.approx(probe(tiny_clip).duration)
    assert sample_frames(items["v1"].video, num_frames=2, size=32).frames.shape == (2, 32, 32, 3)

    # Without --unpack-to the deflated member is imported in place and named as slow.
    again = import_aihub(src, tmp_path / "out2")
    assert [p.name for p in again.deflated_in_place] == ["TS_03.zip::c1.mp4"]
    assert str(_items(tmp_path / "out2")["c1"].video).endswith("TS_03.zip::c1.mp4")


def _items(out: Path):
    return {it.id: it for it in read_manifest(out / "manifest.jsonl")}


def test_a_clip_both_unpacked_and_zipped_is_imported_once_from_the_folder(tmp_path, tiny_clip):
    src = tmp_path / "aihub"
    aihub_layout(src, tiny_clip, {"01": ("train", ["a1", "a2"], "stored")})
    # The user unpacked TS_01.zip next to it (the labels stay zipped).
    write_part(src / TRAIN / SOURCES, "TS_01", {"a1.mp4": tiny_clip, "a2.mp4": tiny_clip}, None)
    report = import_aihub(src, tmp_path / "out")
    assert report.total == 2 and report.zipped_videos == 0
    assert {it.video.parent.name for it in _items(tmp_path / "out").values()} == {"TS_01"}
    assert all("already unpacked" in reason for _, reason in report.duplicates) and len(report.duplicates) == 2


def test_flat_layout_with_a_zip_part_and_a_hashed_split(tmp_path, tiny_clip):
    src = tmp_path / "flat"
    stems = [f"s{i:02d}" for i in range(12)]
    flat_layout(src, tiny_clip, stems, zipped="stored")
    report = import_aihub(src, tmp_path / "out", val_count=3, seed=5)
    assert report.split_source == "hashed" and report.counts["val"] == 3 and report.counts["train"] == 9
    items = _items(tmp_path / "out")
    assert sorted(items) == stems
    assert all("part.zip::clips/" in str(it.video) for it in items.values())


def _flat_tree(root: Path, stems: list[str]) -> Path:
    for stem in stems:  # byte stand-ins: the split never opens a video
        write_part(root, "labels", {f"{stem}.json": label_json(caption_of(stem))}, None)
        write_part(root, "videos", {f"{stem}.mp4": b"\x00\x00\x00\x18ftypmp42"}, None)
    return root


def test_removing_or_adding_clips_moves_no_other_clip(tmp_path):
    stems = [f"clip{i:03d}" for i in range(300)]
    base = _splits_of(_flat_tree(tmp_path / "all", stems), tmp_path / "o1", val_fraction=0.1)
    assert 15 <= list(base.values()).count("val") <= 45
    fewer = _splits_of(_flat_tree(tmp_path / "fewer", stems[::2]), tmp_path / "o2", val_fraction=0.1)
    more = _splits_of(_flat_tree(tmp_path / "more", stems + [f"new{i}" for i in range(50)]), tmp_path / "o3", val_fraction=0.1)
    assert all(fewer[s] == base[s] for s in fewer)
    assert all(more[s] == base[s] for s in base)
    # Another seed is another split.
    assert _splits_of(tmp_path / "all", tmp_path / "o4", val_fraction=0.1, seed=43) != base

    # --val-count: an exact count; one clip more or less moves at most one other clip.
    exact = _splits_of(tmp_path / "all", tmp_path / "o5", val_count=31)
    assert list(exact.values()).count("val") == 31
    shutil.rmtree(tmp_path / "one-less", ignore_errors=True)
    removed = next(s for s in stems if exact[s] == "val")
    less = _splits_of(_flat_tree(tmp_path / "one-less", [s for s in stems if s != removed]), tmp_path / "o6", val_count=31)
    assert list(less.values()).count("val") == 31
    assert sum(1 for s in less if less[s] != exact[s]) == 1
    plus = _splits_of(_flat_tree(tmp_path / "one-more", stems + ["zzz-new"]), tmp_path / "o7", val_count=31)
    assert sum(1 for s in exact if plus[s] != exact[s]) <= 1


def _splits_of(src: Path, out: Path, **kwargs) -> dict[str, str]:
    import_aihub(src, out, **kwargs)
    return _splits(out / "manifest.jsonl")


def test_empty_or_missing_description_kr_is_skipped_not_replaced(tmp_path, tiny_clip):
    src = tmp_path / "aihub"
    aihub_layout(src, tiny_clip, {"01": ("train", ["ok1", "ok2"], None)})
    write_part(src / TRAIN / LABELS, "TL_09", {
        "empty.json": label_json("", description="A city at night"),
        "missing.json": label_json(None, description="A forest"),
    }, "deflated")
    write_part(src / TRAIN / SOURCES, "TS_09", {"empty.mp4": tiny_clip, "missing.mp4": tiny_clip}, "stored")
    report = import_aihub(src, tmp_path / "out")
    assert sorted(_items(tmp_path / "out")) == ["ok1", "ok2"]
    reasons = {Path(str(p)).name: r for p, r in report.unreadable}
    assert "annotation.description_kr is empty" in reasons["TL_09.zip::empty.json"]
    assert "no annotation.description_kr" in reasons["TL_09.zip::missing.json"]
    assert "--caption-field annotation.description" in reasons["TL_09.zip::empty.json"]
    skipped = [json.loads(line) for line in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    assert {Path(s["file"]).name for s in skipped} == {"TL_09.zip::empty.json", "TL_09.zip::missing.json"}
    # Named by the user, another field is used (after description_kr, in that order).
    named = import_aihub(src, tmp_path / "out2", caption_fields=["annotation.description_kr", "annotation.description"])
    assert named.total == 4 and _items(tmp_path / "out2")["empty"].caption == "A city at night"


def test_a_tree_without_any_caption_is_one_line_naming_the_layouts(tmp_path, tiny_clip):
    src = tmp_path / "aihub"
    write_part(src / "labels", "x", {"a.json": label_json(None, description="no korean")}, None)
    write_part(src / "videos", "x", {"a.mp4": tiny_clip}, None)
    with pytest.raises(AIHubImportError) as err:
        import_aihub(src, tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and "no label file yields a caption" in message
    assert "understood layouts" in message and "TL_" in message and "labels/" in message
    result = CliRunner().invoke(main, ["data", "import-aihub", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "understood layouts" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_summary_counts_tokens_with_the_llm_tokenizer(tmp_path, tiny_clip, tiny_models):
    src = tmp_path / "aihub"
    aihub_layout(src, tiny_clip, {"01": ("train", ["a1", "a2", "a3"], "deflated"), "01v": ("val", ["v1"], "stored")})
    write_part(src / TRAIN / LABELS, "TL_05", {"long.json": label_json("긴 " * 40 + "설명입니다.")}, None)
    write_part(src / TRAIN / SOURCES, "TS_05", {"long.mp4": tiny_clip}, None)
    write_part(src / TRAIN / LABELS, "TL_06", {"bad.json": label_json("")}, None)
    write_part(src / TRAIN / SOURCES, "TS_06", {"bad.mp4": tiny_clip}, None)
    runner = CliRunner()
    result = runner.invoke(main, [
        "data", "import-aihub", str(src), "--out", str(tmp_path / "out"), "--unpack-to", str(tmp_path / "unz"),
        "--set", "model.llm=tiny:qwen3", "--set", "train.max_caption_tokens=10",
    ])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "clips train" in out and "clips val" in out
    assert "caption chars (median / p95 / max)" in out and "caption tokens, tiny:qwen3" in out
    assert "cut by train.max_caption_tokens = 10" in out and "1 of 5" in out
    assert "unpacked (deflated in zip)" in out and "3 ->" in out
    assert "bad.json: no caption: annotation.description_kr is empty" in out
    assert "imported 5 clips (train 4, val 1; split: dataset)" in out

    # A model.llm that cannot be loaded offline: characters only, and the summary says so.
    offline = runner.invoke(main, [
        "data", "import-aihub", str(src), "--out", str(tmp_path / "out2"),
        "--set", f"model.llm={tmp_path / 'no-such-model'}",
    ])
    assert offline.exit_code == 0, offline.output
    assert "characters only" in offline.output and "not available offline" in offline.output
    assert "Use `repo_type` argument if needed" in offline.output  # the hub's error, whole


def test_zip_members_hash_probe_and_errors(tmp_path, tiny_clip):
    from kvcap.data.cache import FeatureCache, content_hash
    from kvcap.video import VideoMissing, probe
    from kvcap.video.source import parse_source, zip_member_ref

    archive = write_part(tmp_path, "TS_01", {"d/a.mp4": tiny_clip, "d/empty.mp4": b""}, "stored")
    ref = zip_member_ref(archive, "d/a.mp4")
    assert content_hash(ref) == content_hash(tiny_clip)  # the member's bytes, not the archive's
    cache = FeatureCache(tmp_path / "cache", "enc")
    assert cache.key_for(ref, 4) == cache.key_for(tiny_clip, 4)  # same bytes, same features
    with pytest.raises(FileNotFoundError):
        cache.key_for(zip_member_ref(archive, "d/nope.mp4"), 4)
    with pytest.raises(VideoMissing, match="no member 'd/nope.mp4'"):
        probe(zip_member_ref(archive, "d/nope.mp4"))
    with pytest.raises(Exception, match="empty file"):
        probe(zip_member_ref(archive, "d/empty.mp4"))
    # A real file whose name looks like a reference is a file.
    odd = tmp_path / "x.zip::y.mp4"
    shutil.copyfile(tiny_clip, odd)
    assert parse_source(odd) == odd and probe(odd).width == 64
    # `kvcap probe` takes a member, or a whole zip part (its videos).
    result = CliRunner().invoke(main, ["probe", "--json", str(ref), str(archive)])
    records = json.loads(result.output)
    assert [r["path"].rsplit("/", 2)[-2:] for r in records] == [["TS_01.zip::d", "a.mp4"], ["TS_01.zip::d", "empty.mp4"]]
    assert [r["status"] for r in records] == ["ok", "error"] and result.exit_code == 1


def test_siglip_frames_read_a_zip_member(tmp_path, tiny_clip):
    from kvcap.metrics.siglip import _default_frames
    from kvcap.video.source import zip_member_ref

    archive = write_part(tmp_path, "VS_01", {"v.mp4": tiny_clip}, "stored")
    frames = _default_frames(zip_member_ref(archive, "v.mp4"), 3, 32)
    assert frames.shape == (3, 32, 32, 3)
    assert (frames == _default_frames(tiny_clip, 3, 32)).all()


def test_zipfile_member_is_seekable(tmp_path, tiny_clip):
    """PyAV reads a member in place only because zipfile members seek (Python >= 3.7)."""
    archive = write_part(tmp_path, "p", {"a.mp4": tiny_clip}, "stored")
    with zipfile.ZipFile(archive) as zf, zf.open("a.mp4") as member:
        assert member.seekable()
        member.seek(100)
        assert member.read(8) == tiny_clip.read_bytes()[100:108]


def test_members_of_one_archive_decode_in_parallel_threads(tmp_path, tiny_clip):
    """One shared ZipFile per archive serves several decode threads (the trainer and caption
    pipeline decode ahead in threads); every thread gets the frames a plain file gives."""
    from concurrent.futures import ThreadPoolExecutor

    from fixtures.video import write_clip
    from kvcap.video import sample_frames
    from kvcap.video.source import zip_member_ref

    second = write_clip(tmp_path / "b.mp4", "mpeg4", width=64, height=48, seconds=1.0)
    archive = write_part(tmp_path, "TS_01", {"a.mp4": tiny_clip, "b.mp4": second}, "stored")
    plain = {name: sample_frames(path, num_frames=3, size=32).frames for name, path in (("a.mp4", tiny_clip), ("b.mp4", second))}
    jobs = ["a.mp4", "b.mp4"] * 6
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda name: sample_frames(zip_member_ref(archive, name), num_frames=3, size=32).frames, jobs))
    assert all((frames == plain[name]).all() for name, frames in zip(jobs, got))


def test_probe_reads_a_manifest_with_zip_members(tmp_path, tiny_clip):
    src = tmp_path / "flat"
    flat_layout(src, tiny_clip, ["a", "b"], zipped="deflated")
    import_aihub(src, tmp_path / "out", val_count=1)
    result = CliRunner().invoke(main, ["probe", "--json", str(tmp_path / "out" / "manifest.jsonl")])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["path"].rsplit("::", 1)[-1] for r in records] == ["clips/a.mp4", "clips/b.mp4"]
    assert all(r["status"] == "ok" and r["width"] == 64 for r in records)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    broken = CliRunner().invoke(main, ["probe", str(bad)])
    assert broken.exit_code != 0 and "bad.jsonl:1: missing key 'video'" in broken.output


def _damage(archive: Path, member: str) -> Path:
    """Flip a byte in the middle of a deflated member's data: a CRC error when it is read."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # after the local header
    data = bytearray(archive.read_bytes())
    data[start + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    return archive


def test_a_damaged_deflated_member_is_skipped_with_its_reason(tmp_path, tiny_clip):
    src = tmp_path / "aihub"
    aihub_layout(src, tiny_clip, {"01": ("train", ["a1"], None), "02": ("train", ["b1"], "deflated")})
    _damage(src / TRAIN / SOURCES / "TS_02.zip", "b1.mp4")
    report = import_aihub(src, tmp_path / "out", unpack_to=tmp_path / "unz")
    assert sorted(_items(tmp_path / "out")) == ["a1"]
    reasons = {str(p).rsplit("/", 1)[-1]: r for p, r in report.unreadable}
    assert reasons["TS_02.zip::b1.mp4"].startswith("cannot unpack")
    assert not list((tmp_path / "unz").rglob("*.part"))


def test_caption_inputs_from_a_manifest_a_zip_and_a_member(tmp_path, tiny_clip):
    """`kvcap caption` names each video by its path from the inputs' root; a member as `a.zip/b`."""
    from kvcap.caption.inputs import resolve_inputs, subtitle_names
    from kvcap.video.source import zip_member_ref

    src = tmp_path / "aihub"
    aihub_layout(src, tiny_clip, {"01": ("train", ["t1"], None), "01v": ("val", ["v1", "v2"], "stored")})
    import_aihub(src, tmp_path / "data")
    keys = [v.key for v in resolve_inputs([tmp_path / "data" / "manifest.jsonl"])]
    assert keys == ["1.Training/원천데이터/TS_01/t1.mp4", "2.Validation/원천데이터/VS_01v.zip/v1.mp4",
                    "2.Validation/원천데이터/VS_01v.zip/v2.mp4"]
    assert subtitle_names(keys)[keys[1]] == "2.Validation/원천데이터/VS_01v.zip/v1"
    archive = src / VAL / SOURCES / "VS_01v.zip"
    assert [v.key for v in resolve_inputs([archive])] == ["VS_01v.zip/v1.mp4", "VS_01v.zip/v2.mp4"]
    member = resolve_inputs([zip_member_ref(archive, "v2.mp4")])
    assert [v.key for v in member] == ["VS_01v.zip/v2.mp4"] and str(member[0].path).endswith("VS_01v.zip::v2.mp4")


def test_a_damaged_member_is_a_bad_clip_for_the_feature_cache(tmp_path, tiny_clip):
    """fill_cache reports clips it cannot hash (OSError) and goes on: a damaged member is one."""
    from kvcap.data.cache import FeatureCache
    from kvcap.video.source import zip_member_ref

    archive = _damage(write_part(tmp_path, "TS_01", {"a.mp4": tiny_clip}, "deflated"), "a.mp4")
    with pytest.raises(OSError, match="damaged zip member"):
        FeatureCache(tmp_path / "cache", "enc").key_for(zip_member_ref(archive, "a.mp4"), 4)
    not_a_zip = tmp_path / "TS_02.zip"
    not_a_zip.write_text("not a zip")
    with pytest.raises(OSError, match="not a readable zip archive"):
        FeatureCache(tmp_path / "cache", "enc").key_for(zip_member_ref(not_a_zip, "a.mp4"), 4)


def test_parts_linked_from_elsewhere_are_read_and_a_link_cycle_ends(tmp_path, tiny_clip):
    elsewhere = tmp_path / "disk2"
    aihub_layout(elsewhere, tiny_clip, {"01": ("train", ["a1"], "stored")})
    src = tmp_path / "aihub"
    src.mkdir()
    (src / TRAIN).symlink_to(elsewhere / TRAIN, target_is_directory=True)
    (elsewhere / TRAIN / "loop").symlink_to(elsewhere / TRAIN, target_is_directory=True)
    report = import_aihub(src, tmp_path / "out")
    assert report.total == 1 and report.counts["train"] == 1 and not report.duplicates
