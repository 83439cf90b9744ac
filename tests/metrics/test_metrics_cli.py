"""`kvcap score` end to end: real files, real bad files, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvcap.cli import main

from metrics_helpers import captions

TEXTS = captions(6, seed=11, sentences=(2, 3))


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l, ensure_ascii=False)) + "\n" for l in lines),
                    encoding="utf-8")
    return path


@pytest.fixture
def manifest(tmp_path):
    rows = [{"id": f"c{i}", "video": f"videos/val/c{i}.mp4", "caption": t, "split": "val"} for i, t in enumerate(TEXTS)]
    rows[1]["caption"] = [TEXTS[1], "다른 참조 문장이다."]  # a clip with two references
    return _write(tmp_path / "val.jsonl", rows)


def run(*args):
    result = CliRunner().invoke(main, ["score", *map(str, args)])
    return result


def test_captions_jsonl_matches_by_video_and_reports_json(tmp_path, manifest):
    preds = _write(tmp_path / "captions.jsonl", [
        {"video": "val/c0.mp4", "status": "ok", "caption": TEXTS[0]},          # path suffix
        {"video": "c1.mp4", "status": "ok", "caption": TEXTS[1]},              # basename
        {"video": "videos/val/c2.mp4", "status": "ok", "caption": TEXTS[0]},   # as in the manifest
        {"video": "c3.mp4", "status": "error", "caption": None, "error": "corrupt"},
        {"video": "other/zz.mp4", "status": "ok", "caption": "바다"},          # no reference
    ])
    per_clip = tmp_path / "per_clip.jsonl"
    result = run(preds, "--refs", manifest, "--metrics", "meteor,diversity", "--json", "--per-clip", per_clip)
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)["summary"]
    assert s["n"] == 3 and s["tokenizer"] == "kiwi"
    assert s["prediction_errors"] == 1
    assert s["unmatched_predictions"] == 1 and s["unmatched_prediction_examples"] == ["other/zz.mp4"]
    assert s["missing_predictions"] == 3
    rows = [json.loads(line) for line in per_clip.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["c0", "c1", "c2"]
    assert rows[0]["meteor"] > 0.99 and rows[2]["meteor"] < 0.9


def test_table_by_default_names_tokenizer(tmp_path, manifest):
    preds = _write(tmp_path / "p.jsonl", [{"id": f"c{i}", "caption": t} for i, t in enumerate(TEXTS)])
    result = run(preds, "--refs", manifest, "--metrics", "meteor,diversity", "--tokenizer", "whitespace")
    assert result.exit_code == 0, result.output
    assert "whitespace" in result.output and "METEOR" in result.output and "> 0.40" in result.output


@pytest.mark.parametrize("lines, message", [
    ([], "predictions file is empty"),
    (["", "   "], "predictions file is empty"),
    ([{"id": "c0", "caption": "x"}, "{not json"], ":2: not valid JSON"),
    ([{"id": "c0", "text": "x"}], ":1: record has no 'caption'"),
    ([{"caption": "x"}], ":1: record has neither 'id' nor 'video'"),
    ([{"id": "c0", "caption": 3}], ":1: 'caption' must be a string"),
    ([[1, 2]], ":1: expected a JSON object"),
    ([{"video": "a.mp4", "status": "error", "caption": None}], "no usable predictions"),
    ([{"id": "nope", "caption": "x"}], "no prediction matches a reference"),
])
def test_bad_predictions_are_one_line_errors(tmp_path, manifest, lines, message):
    preds = _write(tmp_path / "bad.jsonl", lines) if lines else (tmp_path / "bad.jsonl")
    if not lines:
        preds.write_text("", encoding="utf-8")
    result = run(preds, "--refs", manifest, "--metrics", "meteor")
    assert result.exit_code == 2
    assert message in result.output and "bad.jsonl" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("lines, message", [
    ([{"id": "c0", "video": "a.mp4", "caption": "x"}, "oops"], ":2: not valid JSON"),
    ([{"id": "c0", "video": "a.mp4"}], ":1: record has no 'caption'"),
    ([{"id": "c0", "caption": []}], ":1: 'caption' must be a string or a non-empty list"),
    ([{"id": "c0", "caption": "x"}, {"id": "c0", "caption": "y"}], ":2: duplicate id 'c0'"),
])
def test_bad_references_are_one_line_errors(tmp_path, lines, message):
    preds = _write(tmp_path / "p.jsonl", [{"id": "c0", "caption": "x"}])
    refs = _write(tmp_path / "refs.jsonl", lines)
    result = run(preds, "--refs", refs, "--metrics", "meteor")
    assert result.exit_code == 2
    assert message in result.output and "refs.jsonl" in result.output


def test_missing_files_and_bad_metric(tmp_path, manifest):
    assert "predictions file not found" in run(tmp_path / "none.jsonl", "--refs", manifest).output
    preds = _write(tmp_path / "p.jsonl", [{"id": "c0", "caption": "x"}])
    result = run(preds, "--refs", manifest, "--metrics", "meteor,bleu")
    assert result.exit_code == 2 and "score.metrics" in result.output and "bleu" in result.output


def test_unavailable_siglip_is_a_clear_message_not_a_traceback(tmp_path, manifest):
    preds = _write(tmp_path / "p.jsonl", [{"id": "c0", "caption": TEXTS[0]}])
    result = run(preds, "--refs", manifest, "--siglip", str(tmp_path / "no-such-model"), "--json")
    assert result.exit_code == 2
    assert "SigLIP2 model" in result.output and "skip with --metrics meteor,diversity" in result.output
    assert "Traceback" not in result.output


def test_previous_score_feeds_the_alarm(tmp_path, manifest):
    preds = _write(tmp_path / "p.jsonl", [{"id": f"c{i}", "caption": t} for i, t in enumerate(TEXTS)])
    previous = tmp_path / "prev.json"
    previous.write_text("{broken", encoding="utf-8")
    result = run(preds, "--refs", manifest, "--metrics", "diversity", "--previous", previous)
    assert result.exit_code == 2 and "prev.json: not a score JSON" in result.output


def test_meteor_is_reported_apart_for_suspect_captions(tmp_path, manifest):
    """Issue 26: captions `kvcap caption` marked suspect (here the looping, wrong ones) score apart."""
    loop = "새가 난다. " * 10
    preds = _write(tmp_path / "captions.jsonl", [
        {"video": "val/c0.mp4", "status": "ok", "caption": TEXTS[0], "suspect": None},
        {"video": "c1.mp4", "status": "ok", "caption": TEXTS[1]},
        {"video": "videos/val/c2.mp4", "status": "ok", "caption": loop, "suspect": "compression_ratio 5.10 > 2.4"},
        {"video": "val/c3.mp4", "status": "ok", "caption": loop, "suspect": "compression_ratio 5.10 > 2.4"},
    ])
    result = run(preds, "--refs", manifest, "--metrics", "meteor", "--tokenizer", "whitespace", "--json")
    assert result.exit_code == 0, result.output
    split = json.loads(result.output)["summary"]["meteor_by_suspect"]
    assert split["suspect"]["n"] == 2 and split["not_suspect"]["n"] == 2
    assert split["not_suspect"]["meteor"] > 0.99 and split["suspect"]["meteor"] < 0.3
    table = run(preds, "--refs", manifest, "--metrics", "meteor", "--tokenizer", "whitespace")
    assert f"METEOR {split['not_suspect']['meteor']:.4f} on 2 not suspect, " in table.output
    assert "on 2 suspect" in table.output
