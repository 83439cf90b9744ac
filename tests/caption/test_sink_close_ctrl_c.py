"""A second Ctrl-C that lands while a job closes still leaves job.json saying how it ended.

`kvcap caption` aborts on a second press; before `fsutil.sigint_held`, a press during the
ledger's compaction cut the close in half and job.json kept "running" for a stopped job (seen in
the Ray engine's two-press test under load). The signals here are real (os.kill to this process).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from kvcap.caption.job import CaptionsLedger, JobFile, JobProgress
from kvcap.caption.sink import CaptionSink
from kvcap.fsutil import sigint_held


def test_a_press_inside_the_block_waits_for_its_end_then_reaches_the_old_handler():
    seen: list[str] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append("handler"))
    try:
        with sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("block finished")
        assert seen == ["block finished", "handler"]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_with_python_s_default_handler_the_press_is_a_keyboard_interrupt_after_the_block():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)
    assert finished == [True]


class _PressedWhileCompacting(CaptionsLedger):
    def compact(self, order):
        os.kill(os.getpid(), signal.SIGINT)  # the user's second Ctrl-C, mid-close
        return super().compact(order)


def test_job_json_gets_its_final_status_when_ctrl_c_lands_during_close(tmp_path):
    ledger = _PressedWhileCompacting(tmp_path / "captions.jsonl")
    ledger.open()
    counts = JobProgress(total=2)
    job = JobFile(tmp_path / "job.json", counts, checkpoint="ck", inputs=["v"], output=str(tmp_path))
    job.update(force=True)
    sink = CaptionSink(out=tmp_path, ledger=ledger, names={}, formats=["jsonl"], counts=counts, checkpoint="ck",
                       progress=None, job=job)
    with pytest.raises(KeyboardInterrupt):  # the press is not lost: it arrives once the close is done
        sink.close([], "interrupted", None)
    assert json.loads((tmp_path / "job.json").read_text())["status"] == "interrupted"
