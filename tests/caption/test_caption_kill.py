"""SIGKILL a caption job at many points, rerun it: one ok record per video, no torn lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import srt

SCRIPT = Path(__file__).with_name("kill_job.py")
CLIPS = 6


def start(videos: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(videos), str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_complete(out: Path, count: int) -> None:
    text = (out / "captions.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line is valid JSON
    videos = [r["video"] for r in records]
    assert len(videos) == len(set(videos)) == count  # exactly one record per video
    assert all(r["status"] == "ok" for r in records)
    for record in records:
        stem = record["video"].rsplit(".", 1)[0]
        cues = list(srt.parse((out / f"{stem}.srt").read_text(encoding="utf-8")))
        assert [c.content for c in cues] == [record["caption"]]
        assert (out / f"{stem}.vtt").read_text(encoding="utf-8").startswith("WEBVTT\n")


@pytest.mark.parametrize("point", ["torn:3", "before-record:2", "after-record:1", "subtitle:4", "compact:1"])
def test_killed_at_a_write_then_rerun_is_complete(point, h264_folder, tmp_path):
    videos, out = h264_folder(CLIPS), tmp_path / "out"
    killed = start(videos, out, "--kill", point)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    if point.startswith("torn"):
        assert not (out / "captions.jsonl").read_bytes().endswith(b"\n")  # really left torn
    rerun = start(videos, out)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    check_complete(out, CLIPS)


def test_killed_from_outside_mid_run_then_rerun_is_complete(h264_folder, tmp_path):
    videos, out = h264_folder(CLIPS), tmp_path / "out"
    for kill_after in (1, 3):  # records already written when the signal lands
        proc = start(videos, out, "--delay", "0.3", "--batch-size", "1")
        jsonl = out / "captions.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= kill_after:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    rerun = start(videos, out)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    check_complete(out, CLIPS)
