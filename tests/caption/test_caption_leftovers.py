"""Nothing left behind: stale temp files of killed writers, the lock file, an empty folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvcap.caption import CaptionOptions, caption_folder
from kvcap.caption.job import CaptionsLedger
from kvcap.video.listing import NoVideosError

from .fake_captioner import FakeCaptioner

SRC = str(Path(__file__).resolve().parents[2] / "src")

# A writer stuck inside atomic_write_text, after its temp file is made (fsync never returns).
STUCK_WRITER = textwrap.dedent("""
    import os, sys, time
    import kvcap.fsutil as fsutil
    def hang(fd):
        print("writing", flush=True)
        time.sleep(600)
    os.fsync = hang
    fsutil.atomic_write_text(sys.argv[1], "1\\n00:00:00,000 --> 00:00:01,000\\nhalf a cue")
""")


def _stuck_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.tmp"))


def test_rerun_removes_temp_files_of_killed_writers_only(h264_folder, tmp_path):
    folder, out = h264_folder(2), tmp_path / "out"
    list(caption_folder(folder, FakeCaptioner(), out, CaptionOptions(batch_size=2)))
    killed = _stuck_writer(out / "clip00.srt")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    live = _stuck_writer(out / "clip01.srt")  # another shard, still writing
    try:
        stale, = [p for p in _temps(out) if f"-{killed.pid}." in p.name]
        fresh, = [p for p in _temps(out) if f"-{live.pid}." in p.name]
        assert f"kvcap-{socket.gethostname()}-{killed.pid}." in stale.name  # the writer's host and pid
        list(caption_folder(folder, FakeCaptioner(), out, CaptionOptions(batch_size=2)))  # the rerun
        assert not stale.exists()
        assert fresh.exists()  # its writer is alive: not ours to remove
    finally:
        live.kill()
        live.wait(timeout=10)


def test_clean_finish_removes_the_lock_file(h264_folder, tmp_path):
    folder, out = h264_folder(2), tmp_path / "out"
    list(caption_folder(folder, FakeCaptioner(), out, CaptionOptions(batch_size=2)))
    assert not (out / ".captions.lock").exists()
    assert sorted(p.name for p in out.iterdir()) == ["captions.jsonl", "clip00.srt", "clip01.srt", "job.json"]


def test_a_waiter_that_locked_a_removed_lock_file_takes_the_new_one(tmp_path):
    """The race of `close` (unlink, then unlock) against a process that opened the old file."""
    import fcntl

    path = tmp_path / "captions.jsonl"
    first = CaptionsLedger(path)
    first.open()
    stale_handle = open(first.lock_path, "a+")  # opened before the holder finished
    first.close()
    assert not first.lock_path.exists()
    fcntl.flock(stale_handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # wins the lock of a removed file
    second = CaptionsLedger(path)
    second.open()  # must not trust that: it locks the file at the path
    assert second.lock_path.exists()
    assert os.stat(second.lock_path).st_ino == os.fstat(second._lock_handle.fileno()).st_ino
    second.close()
    stale_handle.close()


def test_no_videos_is_an_error_before_anything_is_written(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a video")
    out = tmp_path / "out"
    with pytest.raises(NoVideosError, match="no videos found under .*notes.*1 other file"):
        list(caption_folder(folder, FakeCaptioner(), out))
    assert not out.exists()  # no job.json claiming "finished"


def test_ctrl_c_leaves_no_thread_traceback(h264_folder, tmp_path):
    """A real SIGINT while the decode feeder is blocked on a full queue (many videos, batch 1)."""
    folder, out = h264_folder(30), tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from fake_captioner import FakeCaptioner
        from kvcap.caption import CaptionOptions, caption_folder
        try:
            for result in caption_folder({str(folder)!r}, FakeCaptioner(delay_s=0.2), {str(out)!r},
                                         CaptionOptions(batch_size=1, workers=1)):
                print("done", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "done"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "interrupted" in stdout
    assert "Exception in thread" not in stderr and "Traceback" not in stderr, stderr
    assert json.loads((out / "job.json").read_text())["status"] == "interrupted"
    assert not (out / ".captions.lock").exists()
