"""Issue 22: zip parts made on Korean Windows (CP949 names, no UTF-8 flag) read with their Korean
names in records, errors and the import summary; a member damaged mid-stream is a typed video
error. Real zips, real damaged bytes, the real `kvcap` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aihub_trees import LABELS, SOURCES, TRAIN, label_json, write_part

SRC = str(Path(__file__).resolve().parents[2] / "src")
STEM, EMPTY = "서울_야경_001", "부산_해변_002"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from fixtures.video import write_clip

    return write_clip(tmp_path_factory.mktemp("cp949-clip") / "clip.mp4", "h264", width=64, height=48, seconds=1.0)


def kvcap(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kvcap.cli", *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def _damage(archive: Path) -> Path:
    """Flip a byte in the middle of the (only) member's data: its CRC fails when it is read."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    name_bytes = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    start = info.header_offset + 30 + len(name_bytes) + len(info.extra)  # after the local header
    data = bytearray(archive.read_bytes())
    data[start + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    return archive


def test_the_parts_are_what_korean_windows_writes(tmp_path, tiny_clip):
    archive = write_part(tmp_path, "TS_01", {f"{STEM}.mp4": tiny_clip}, "stored", names="cp949")
    with zipfile.ZipFile(archive) as zf:  # python alone reads them as CP437
        (info,) = zf.infolist()
    assert not info.flag_bits & 0x800 and info.filename != f"{STEM}.mp4"
    assert info.filename.encode("cp437") == f"{STEM}.mp4".encode("cp949")

    from kvcap.video.ziparchive import open_zip

    with open_zip(archive) as zf:
        assert zf.namelist() == [f"{STEM}.mp4"] and zf.read(f"{STEM}.mp4") == tiny_clip.read_bytes()


def test_names_that_are_not_cp949_stay_as_zipfile_reads_them(tmp_path):
    from kvcap.video.ziparchive import open_zip

    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("바다.json", "{}")          # UTF-8, flagged
        zf.writestr("plain.json", "{}")         # ASCII
        info = zipfile.ZipInfo("\x80\xff.json".encode("latin-1").decode("cp437"))  # bytes 80 ff: not CP949
        zf.writestr(info, "{}")
    with open_zip(archive) as zf:
        names = zf.namelist()
        assert "바다.json" in names and "plain.json" in names
        odd = next(n for n in names if n not in ("바다.json", "plain.json"))
        assert odd.encode("cp437") == b"\x80\xff.json" and zf.read(odd) == b"{}"


def test_import_summary_records_and_probe_read_korean_names(tmp_path, tiny_clip):
    src = tmp_path / "aihub"
    write_part(src / TRAIN / LABELS, "TL_01", {f"{STEM}.json": label_json("서울의 밤 풍경이다."),
                                               f"{EMPTY}.json": label_json("")}, "deflated", names="cp949")
    write_part(src / TRAIN / SOURCES, "TS_01", {f"{STEM}.mp4": tiny_clip, f"{EMPTY}.mp4": tiny_clip}, "stored",
               names="cp949")
    out = tmp_path / "out"
    imported = kvcap("data", "import-aihub", src, "--out", out)
    assert imported.returncode == 0, imported.stderr
    assert f"{EMPTY}.json: no caption: annotation.description_kr is empty" in imported.stdout + imported.stderr
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [STEM] and rows[0]["video"].endswith(f"TS_01.zip::{STEM}.mp4")

    probed = kvcap("probe", "--json", out / "manifest.jsonl")
    assert probed.returncode == 0, probed.stderr
    (record,) = json.loads(probed.stdout)
    assert record["status"] == "ok" and record["path"].endswith(f"{STEM}.mp4")


def test_a_member_damaged_mid_stream_is_a_typed_video_error(tmp_path, tiny_clip):
    from kvcap.errors import KvcapError
    from kvcap.video import DamagedZipMember, VideoCorrupt, probe, sample_frames
    from kvcap.video.source import zip_member_ref

    for mode in ("stored", "deflated"):
        archive = _damage(write_part(tmp_path / mode, "TS_01", {f"{STEM}.mp4": tiny_clip}, mode, names="cp949"))
        ref = zip_member_ref(archive, f"{STEM}.mp4")
        for read in (lambda: probe(ref), lambda: sample_frames(ref, num_frames=4, size=32)):
            with pytest.raises(DamagedZipMember, match="damaged zip member") as caught:
                read()
            assert isinstance(caught.value, VideoCorrupt) and isinstance(caught.value, KvcapError)
            assert STEM in str(caught.value) and "\n" not in str(caught.value)

    probed = kvcap("probe", "--json", archive)  # the whole part: its one member fails, named in Korean
    assert probed.returncode == 1 and "Traceback" not in probed.stderr
    (record,) = json.loads(probed.stdout)
    assert record["status"] == "error" and record["path"].endswith(f"TS_01.zip::{STEM}.mp4")
    assert "damaged zip member" in record["error"]
