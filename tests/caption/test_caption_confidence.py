"""Confidence per caption in captions.jsonl (issue 26): avg_logprob and compression_ratio on each
ok record and each of its segments, and `suspect` (not a status) when a threshold trips."""

from __future__ import annotations

import json

from kvcap.caption import CaptionOptions, caption_folder
from kvcap.caption.confidence import Flags, Score, figures
from kvcap.records import CaptionRecord, suspect_reason

from .fake_captioner import FakeCaptioner

LOOP = ("새가 난다. " * 12).strip()


class ScoredCaptioner(FakeCaptioner):
    """Reports token log-probabilities as kvcap's Captioner.generate_scored does: one token per
    character, each at log-probability `logprob(brightness)`."""

    def __init__(self, logprob, text=None, **kwargs):
        super().__init__(text, **kwargs)
        self.logprob = logprob

    def generate_scored(self, features, gen):
        import numpy as np

        from kvcap.model.batch_generate import Generated

        brightness = np.asarray(features).mean(axis=(1, 2, 3))
        texts = self.generate(features, gen)
        return [Generated(ids=list(range(len(t))), logprobs=[self.logprob(b)] * len(t), text=t)
                for t, b in zip(texts, brightness)]


def _records(out):
    return [json.loads(line) for line in (out / "captions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_records_and_segments_carry_confidence_and_the_suspect_reason(h264_folder, tmp_path):
    out = tmp_path / "out"
    # every clip's windows: first window unsure (-2.0), second sure (-0.1); text repeats in clip 2
    calls = iter(range(100))

    def text(_b):
        n = next(calls)
        return LOOP if n == 5 else f"맑은 하늘 아래 바다가 보인다 {n}."

    flip = iter([True, False] * 50)  # batches of 2 = the two windows of one video, in order
    captioner = ScoredCaptioner(lambda _b: -2.0 if next(flip) else -0.1, text)
    results = list(caption_folder(h264_folder(3), captioner, out, CaptionOptions(formats="jsonl", batch_size=2, segment=1)))
    assert all(r.status == "ok" for r in results)
    records = _records(out)
    for record in records:
        assert len(record["segments"]) == 2
        first, second = record["segments"]
        assert first["avg_logprob"] == -2.0 and second["avg_logprob"] == -0.1
        n1, n2 = len(first["text"]), len(second["text"])
        assert abs(record["avg_logprob"] - (-2.0 * n1 - 0.1 * n2) / (n1 + n2)) < 1e-3  # token-weighted
        assert record["status"] == "ok" and "segment 1: avg_logprob -2.00 < -1" in record["suspect"]
    looping = records[2]
    assert looping["segments"][1]["compression_ratio"] > 2.4
    assert "segment 2: compression_ratio" in looping["suspect"]
    assert "compression_ratio" in looping["suspect"].split(";")[0]  # the whole caption repeats too


def test_thresholds_come_from_the_options_and_a_confident_caption_is_not_suspect(h264_folder, tmp_path):
    folder = h264_folder(2)
    sure = list(caption_folder(folder, ScoredCaptioner(lambda b: -0.2), tmp_path / "a", CaptionOptions(formats="jsonl")))
    assert [r.suspect for r in sure] == [None, None] and all(r.avg_logprob == -0.2 for r in sure)
    strict = CaptionOptions(formats="jsonl", flag_logprob_below=-0.1)
    flagged = list(caption_folder(folder, ScoredCaptioner(lambda b: -0.2), tmp_path / "b", strict))
    assert all(r.suspect == "avg_logprob -0.20 < -0.1" for r in flagged)
    assert [r["suspect"] for r in _records(tmp_path / "b")] == [r.suspect for r in flagged]


def test_suspect_reason_rule():
    assert suspect_reason(-0.5, 1.3) is None
    assert suspect_reason(-1.5, 1.3) == "avg_logprob -1.50 < -1"
    assert suspect_reason(-0.5, 2.5) == "compression_ratio 2.50 > 2.4"
    assert suspect_reason(None, None) is None
    assert suspect_reason(-1.5, 3.0, logprob_below=-2, compression_above=3.5) is None


def test_figures_without_scores_still_give_the_compression_ratio():
    segments = [{"start": 0.0, "end": 1.0, "text": LOOP}]
    got = figures(segments, [None], LOOP, Flags())
    assert got["avg_logprob"] is None and got["compression_ratio"] > 2.4 and got["suspect"].startswith("compression_ratio")
    assert segments[0]["avg_logprob"] is None and segments[0]["compression_ratio"] == got["compression_ratio"]
    empty = figures([{"start": 0, "end": 1, "text": "비"}], [Score(None, 0)], "비", Flags())
    assert empty["avg_logprob"] is None and empty["suspect"] is None


def test_the_record_model_keeps_the_new_fields():
    line = {"video": "a.mp4", "status": "ok", "caption": "x", "avg_logprob": -0.3, "compression_ratio": 1.1,
            "suspect": "avg_logprob -1.20 < -1"}
    record = CaptionRecord.from_dict(line)
    assert (record.avg_logprob, record.compression_ratio, record.suspect) == (-0.3, 1.1, "avg_logprob -1.20 < -1")
    CaptionRecord.check_keys(line, "x")  # not refused as unknown keys
