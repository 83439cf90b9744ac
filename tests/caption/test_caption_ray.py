"""`kvcap caption --cluster ray` against the local engine, and under faults, on one local Ray
cluster per session (tests/fixtures/ray.py) with the bundled demo model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main

pytestmark = pytest.mark.torch  # the actors load the demo model

if os.environ.get("KVCAP_TESTS_WITHOUT_RAY"):  # set by the lower-bound nox sessions (NOT_AT_OLDEST)
    pytest.skip("Ray (the kvcap[ray] extra) is left out of this session", allow_module_level=True)


@pytest.fixture(autouse=True)
def _no_project_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./kvcap.toml unless a test writes one


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """A 4.6 s clip of three shots: several --segment 2 windows and several scenes."""
    from fixtures.shots import write_shots

    path, _ = write_shots(tmp_path_factory.mktemp("long") / "long.mp4",
                          [("testsrc", 1.6), ("smptebars", 1.6), ("mandelbrot", 1.4)])
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["caption", *map(str, args)], prog_name="kvcap", catch_exceptions=False)


def records_of(out: Path) -> dict[str, dict]:
    lines = (out / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["video"]: r for r in map(json.loads, lines)}


def subtitles_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.suffix in (".srt", ".vtt")}


SAME = ("status", "caption", "segments", "duration", "fps", "frame_times", "error", "compression_ratio", "suspect")


def _confidence_apart(record: dict) -> tuple[dict, list]:
    """The record with its avg_logprob figures taken out (a batch made of other clips may move a
    log-probability in its last digits), and those figures."""
    figures = [record.get("avg_logprob")] + [s.get("avg_logprob") for s in record.get("segments", [])]
    segments = [{k: v for k, v in s.items() if k != "avg_logprob"} for s in record.get("segments", [])]
    return {**record, "segments": segments}, figures


@pytest.mark.slow
@pytest.mark.parametrize("segment", ["0", "2", "scenes"])
def test_ray_writes_exactly_what_the_local_engine_writes(segment, mixed_folder, long_clip, ray_cluster, tmp_path):
    (mixed_folder / "long.mp4").write_bytes(long_clip.read_bytes())  # several windows and shots
    common = (mixed_folder, "--checkpoint", "demo", "--format", "srt,vtt", "--batch-size", "2", "--segment", segment,
              # settings the config carries past the command line: both engines must take them
              "--set", "subtitle.max_line_chars=10", "--set", "caption.flag_compression_above=0.5")
    local = invoke(*common, "-o", tmp_path / "local")
    on_ray = invoke(*common, "-o", tmp_path / "ray", "--cluster", "ray")
    assert local.exit_code == on_ray.exit_code == 1, on_ray.output  # the broken files fail in both
    assert "5 ok, 3 failed, 0 skipped of 8" in on_ray.output
    expected, got = records_of(tmp_path / "local"), records_of(tmp_path / "ray")
    assert list(got) == list(expected)  # the ledger is in input order once the job closes
    for video, record in expected.items():
        (mine, mine_figures), (theirs, their_figures) = _confidence_apart(got[video]), _confidence_apart(record)
        assert {k: mine[k] for k in SAME} == {k: theirs[k] for k in SAME}, video
        assert mine_figures == pytest.approx(their_figures, abs=1e-3), video  # Ray's workers report it too
        assert record["status"] == "error" or None not in their_figures
    if segment != "0":
        assert len(got["long.mp4"]["segments"]) > 1
    assert any(r.get("suspect") for r in got.values())  # the 0.5 compression threshold marks them
    assert subtitles_of(tmp_path / "ray") == subtitles_of(tmp_path / "local")  # byte-identical files
    job = json.loads((tmp_path / "ray" / "job.json").read_text())
    assert job["cluster"] == "ray" and job["status"] == "finished" and job["ok"] == 5
    (worker,) = job["workers"]  # one captioner on a CPU-only cluster; it chose its batch itself
    assert worker["device"] == "cpu" and worker["batch_size"] == 2 and worker["items"] > 0
    assert job["generation"]["max_new_tokens"] == 96  # the demo checkpoint's, as the worker loaded it


# ---------------------------------------------------------------------------------------------
# Faults: real SIGKILLs of real processes; the driver is a real `kvcap caption` subprocess.
# ---------------------------------------------------------------------------------------------

def start_driver(videos: Path, out: Path, *extra: str, address: str | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "kvcap.cli", "caption", str(videos), "--checkpoint", "demo", "-o", str(out),
           "--cluster", "ray", "--format", "srt", *extra]
    if address:
        cmd += ["--set", f"ray.address={address}"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(out: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    jsonl = out / "captions.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {count} records in time: {proc.poll()}")


def kill_one(cluster, stage: str, proc: subprocess.Popen, timeout: float = 120) -> int:
    """SIGKILL a process working on `stage` right now (its pid file says so); returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for pid in cluster.pids(stage):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            return pid
        time.sleep(0.005)
    raise AssertionError(f"no {stage} process to kill while the job ran")


def assert_each_once_and_ok(out: Path, stderr: str, videos: list[str]) -> None:
    records = records_of(out)
    assert sorted(records) == sorted(videos)
    assert all(r["status"] == "ok" for r in records.values()), records
    lines = (out / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(videos)
    for video in videos:  # written at most once by this run: one progress line per video written
        assert stderr.count(f"] {video}  ok ") <= 1, video


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["caption", "decode"])
def test_a_killed_actor_or_decode_task_is_retried_nothing_lost_or_doubled(stage, ray_cluster, h264_folder, tmp_path):
    for stale in ray_cluster.pid_dir.glob("*"):
        stale.unlink()
    videos, out = h264_folder(10), tmp_path / "out"
    proc = start_driver(videos, out, "--segment", "scenes" if stage == "decode" else "1", "--batch-size", "1",
                        address=ray_cluster.address)
    if stage == "caption":  # mid-run: the actor has written some; decode tasks run ahead from the start
        wait_for_records(out, 1, proc)
    killed = kill_one(ray_cluster, stage, proc)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # it really died
    names = sorted(p.name for p in videos.iterdir())
    assert_each_once_and_ok(out, err, names)
    assert all(err.count(f"] {name}  ok ") == 1 for name in names)  # each written exactly once


@pytest.mark.slow
def test_a_killed_driver_then_a_rerun_finishes_without_duplicates(ray_cluster, h264_folder, tmp_path):
    videos, out = h264_folder(10), tmp_path / "out"
    proc = start_driver(videos, out, "--segment", "1", "--batch-size", "1", address=ray_cluster.address)
    wait_for_records(out, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done_before = set(records_of(out))
    assert 2 <= len(done_before) < 10
    rerun = start_driver(videos, out, address=ray_cluster.address)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    assert f"({len(done_before)} already done)" in err
    assert not any(f"] {name}  ok " in err for name in done_before)  # not captioned again
    assert_each_once_and_ok(out, err, sorted(p.name for p in videos.iterdir()))


def ray_processes() -> set[int]:
    """Ray's own daemons on this machine (GCS and raylet), by pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"gcs_server" in cmd or b"/raylet" in cmd:
                found.add(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_exits_130_stops_the_cluster_kvcap_started_and_a_rerun_resumes(presses, ray_cluster, h264_folder,
                                                                              tmp_path):
    videos, out = h264_folder(24), tmp_path / "out"  # enough that the drain after one press cannot finish them all
    before = ray_processes()
    proc = start_driver(videos, out, "--segment", "1", "--batch-size", "1", address=None)  # starts its own
    wait_for_records(out, 1, proc)
    started = ray_processes() - before
    assert started, "kvcap started no local cluster"
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "rerun the same command to resume" in err
    deadline = time.monotonic() + 30
    while started & ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not started & ray_processes(), "a Ray process kvcap started is still running"
    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "interrupted" and 1 <= job["ok"] < 24  # stopped early, what was written is kept
    rerun = start_driver(videos, out, address=ray_cluster.address)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    assert f"({job['ok']} already done)" in err
    assert_each_once_and_ok(out, err, sorted(p.name for p in videos.iterdir()))


# ---------------------------------------------------------------------------------------------
# Files a worker cannot read, and Ray not installed.
# ---------------------------------------------------------------------------------------------

def ray_job(videos: Path, out: Path, checkpoint: str, cluster):
    from kvcap.caption.cluster.connect import connect
    from kvcap.commands.caption_ray import ray_options
    from kvcap.config import Config, apply_overrides

    cfg = apply_overrides(Config(), [f"caption.checkpoint={checkpoint}", "caption.batch_size=2",
                                     'caption.formats=["jsonl", "srt"]'])
    options = ray_options(cfg, None, None, False)
    from kvcap.caption.cluster.engine import RayCaptionJob

    return RayCaptionJob.create([videos], cfg, out, options, connect())


def test_a_video_no_worker_can_read_is_an_error_naming_node_and_path(ray_cluster, h264_folder, tmp_path):
    import socket

    from kvcap.commands.caption_ray import summary_lines

    videos = h264_folder(3)
    job = ray_job(videos, tmp_path / "out", "demo", ray_cluster)
    gone = videos / "clip01.mp4"
    gone.unlink()  # listed by the driver, then unreadable where the decode task runs
    results = {r.video: r for r in job.run()}
    assert results["clip01.mp4"].status == "error"
    assert str(gone) in results["clip01.mp4"].error and f"node {socket.gethostname()}" in results["clip01.mp4"].error
    assert results["clip00.mp4"].ok and results["clip02.mp4"].ok
    assert not job.all_unreadable
    assert "videos and checkpoints must be on a file system every node mounts" not in summary_lines(job)


def test_a_checkpoint_no_worker_can_read_fails_every_clip_with_one_hint(ray_cluster, tiny_checkpoint, h264_folder,
                                                                        tmp_path):
    import shutil

    from kvcap.commands.caption_ray import summary_lines

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    job = ray_job(h264_folder(2), tmp_path / "out", str(checkpoint), ray_cluster)
    shutil.rmtree(checkpoint)  # read by the driver, missing where the actors load it
    results = list(job.run())
    assert [r.status for r in results] == ["error", "error"]
    assert all(str(checkpoint) in r.error and "on node" in r.error for r in results)
    assert job.all_unreadable
    assert summary_lines(job)[-1] == "videos and checkpoints must be on a file system every node mounts"


NO_RAY = """
import sys
sys.modules["ray"] = None  # `import ray` raises ImportError, as without the extra
from click.testing import CliRunner
from kvcap.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
sys.stdout.write(result.output)
print(result.exit_code)
"""


def test_without_the_extra_cluster_ray_is_one_line_naming_it(h264_folder, tmp_path):
    videos = h264_folder(1)
    proc = subprocess.run([sys.executable, "-c", NO_RAY, "caption", str(videos), "--checkpoint", "demo", "-o",
                           str(tmp_path / "out"), "--cluster", "ray"], capture_output=True, text=True, timeout=120)
    *lines, code = proc.stdout.rstrip("\n").split("\n")
    assert code == "2", proc.stdout + proc.stderr
    errors = [line for line in lines if "kvcap[ray]" in line]
    assert len(errors) == 1 and "pip install 'kvcap[ray]'" in errors[0]
    assert not (tmp_path / "out" / "captions.jsonl").exists()
