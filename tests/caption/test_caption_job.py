"""job.json state and the captions ledger (lock, torn tail, compaction)."""

from __future__ import annotations

import json
import os

import pytest

from kvcap.caption.job import CaptionsLedger, JobFile, JobLockedError, JobProgress


def _rec(video, status="ok"):
    return {"video": video, "status": status, "caption": "c" if status == "ok" else None, "segments": [],
            "duration": 1.0, "frame_times": [0.5], "checkpoint": "x", "elapsed_s": 0.1,
            "error": None if status == "ok" else "bad"}


def test_job_file_fields_throttle_and_final_status(tmp_path):
    progress = JobProgress(total=10, skipped=2)
    job = JobFile(tmp_path / "job.json", progress, checkpoint="ck", inputs=["videos"], output=str(tmp_path),
                  min_interval=60)
    assert job.update() is True
    progress.ok, progress.failed = 3, 1
    assert job.update() is False  # throttled: within min_interval of the last write
    state = json.loads((tmp_path / "job.json").read_text())
    assert state["done"] == 2 and state["status"] == "running"
    for key in ("status", "pid", "checkpoint", "inputs", "total", "done", "ok", "failed", "skipped",
                "throughput", "eta_s", "started", "updated"):
        assert key in state
    assert state["pid"] == os.getpid() and state["started"].endswith("+00:00")
    job.close("finished")
    state = json.loads((tmp_path / "job.json").read_text())
    assert (state["status"], state["done"], state["ok"], state["failed"], state["skipped"]) == ("finished", 6, 3, 1, 2)
    assert state["throughput"] > 0 and state["eta_s"] is not None
    with pytest.raises(ValueError, match="job status"):
        job.close("done")


def test_ledger_repairs_a_torn_tail_and_compacts(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps(_rec("a.mp4", "error")) + "\n" + json.dumps(_rec("b.mp4")) + "\n" + '{"video": "c.mp',
                    encoding="utf-8")
    ledger = CaptionsLedger(path)
    previous = ledger.open()
    assert set(previous) == {"a.mp4", "b.mp4"}
    ledger.append(_rec("a.mp4"))
    ledger.append(_rec("c.mp4"))
    text = path.read_text(encoding="utf-8")
    assert all(json.loads(line) for line in text.splitlines())  # the torn line was cut, not glued
    assert ledger.compact(["c.mp4", "a.mp4", "b.mp4"]) == 3
    ledger.append(_rec("d.mp4"))  # still appendable after the atomic rewrite
    ledger.close()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["video"] for r in records] == ["c.mp4", "a.mp4", "b.mp4", "d.mp4"]
    assert records[1]["status"] == "ok"


def test_ledger_lock_refuses_a_second_writer(tmp_path):
    first = CaptionsLedger(tmp_path / "captions.jsonl")
    first.open()
    with pytest.raises(JobLockedError, match=f"pid {os.getpid()}"):
        CaptionsLedger(tmp_path / "captions.jsonl").open()
    first.close()
    second = CaptionsLedger(tmp_path / "captions.jsonl")
    second.open()
    second.close()
