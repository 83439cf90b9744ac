"""The engine that actually decoded is visible (issue 25): job.json's `engine`, one line when
CUDA graph capture failed (not one per batch or bucket), and the end-of-run summary names it."""

from __future__ import annotations

import io
import json

from kvcap.caption import CaptionOptions, caption_folder
from kvcap.commands.progress import ProgressReporter

from .fake_captioner import FakeCaptioner

CAPTURE_ERROR = "RuntimeError: operation not permitted when stream is capturing"


class GraphlessCaptioner(FakeCaptioner):
    """Reports what kvcap.model.captioner.Captioner reports after a batch whose CUDA graph capture
    failed: the static loop ran without graphs, and why (no GPU here to fail a real capture)."""

    def generate(self, features, gen):
        self.last_engine = "static"
        self.capture_error = CAPTURE_ERROR
        return super().generate(features, gen)


def _reporter(stream) -> ProgressReporter:
    return ProgressReporter(out_dir="out", checkpoint="ck", device="cuda", batch_size=2, workers=1,
                            stream=stream, tty=False)


def test_a_failed_capture_is_one_line_and_the_engine_is_recorded(h264_folder, tmp_path):
    stream = io.StringIO()
    reporter = _reporter(stream)
    out = tmp_path / "out"
    options = CaptionOptions(formats="jsonl", batch_size=2, workers=1, checkpoint="ck")
    results = list(caption_folder(h264_folder(5), GraphlessCaptioner(), out, options, progress=reporter))
    assert len(results) == 5
    reporter.summary("finished")  # (click.echo: stdout; the notes went to `stream`)
    log = stream.getvalue()
    assert log.count("CUDA graph capture failed") == 1, log  # three batches, one line
    assert CAPTURE_ERROR in log
    assert log.index("CUDA graph capture failed") < log.index("[1/5]")  # after the first batch, before its videos
    job = json.loads((out / "job.json").read_text())
    assert job["engine"] == "static" and job["generation"] == {}


def test_summary_names_the_engine(h264_folder, tmp_path, capsys):
    class Graphed(FakeCaptioner):
        def generate(self, features, gen):
            self.last_engine = "static+cudagraph"
            return super().generate(features, gen)

    stream = io.StringIO()
    reporter = _reporter(stream)
    options = CaptionOptions(formats="jsonl", batch_size=2, workers=1)
    list(caption_folder(h264_folder(2), Graphed(), tmp_path / "out", options, progress=reporter))
    reporter.summary("finished")
    summary = capsys.readouterr().out
    assert "2 ok, 0 failed, 0 skipped of 2" in summary and "engine static+cudagraph)" in summary
    assert "capture failed" not in stream.getvalue()
    assert json.loads((tmp_path / "out" / "job.json").read_text())["engine"] == "static+cudagraph"
