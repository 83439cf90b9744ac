"""One exit-code policy (0 ok, 1 some work failed, 2 usage/config/environment, 130 Ctrl-C),
errors that name the option typed, `score --check`, and SigLIP2 skipped unless asked for."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kvcap.cli import COMMANDS, main
from kvcap.errors import EXIT_CODES_HELP

from cli_helpers import SRC, kvcap, one_error_line

TEXTS = ["바다 위로 해가 진다.", "도시의 밤거리에 차가 달린다.", "눈 덮인 산이 보인다."]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _score_files(tmp_path: Path, predictions: list[str]) -> tuple[Path, Path]:
    refs, preds = tmp_path / "refs.jsonl", tmp_path / "preds.jsonl"
    refs.write_text("".join(json.dumps({"id": f"c{i}", "video": f"c{i}.mp4", "caption": t}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(TEXTS)), encoding="utf-8")
    preds.write_text("".join(json.dumps({"id": f"c{i}", "caption": t}, ensure_ascii=False) + "\n"
                             for i, t in enumerate(predictions)), encoding="utf-8")
    return preds, refs


def _all_commands():
    for name in COMMANDS:
        command = main.get_command(click.Context(main), name)
        yield [name], command
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield [name, sub_name], sub


def test_every_help_states_the_exit_codes():
    seen = 0
    for path, command in _all_commands():
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert " ".join(EXIT_CODES_HELP.split()) in " ".join(result.output.split()), path
        seen += 1
    assert seen >= len(COMMANDS)


@pytest.mark.parametrize("args, option, key", [
    (["score", "p.jsonl", "--refs", "r.jsonl", "--metrics", "bleu"], "--metrics", "score.metrics"),
    (["train", "--stage", "1", "--projector", "bogus"], "--projector", "projector.name"),
])
def test_a_bad_flag_value_names_the_flag_not_set(tmp_path, monkeypatch, args, option, key):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.jsonl").write_text("")
    (tmp_path / "r.jsonl").write_text("")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    # Either kvcap's config check or Click's choice (built from the same declared field) answers.
    named = line.startswith(f"Error: {option}: {key}:") or line.startswith(f"Error: Invalid value for '{option}'")
    assert named and "--set" not in line, line


def test_a_bad_set_still_names_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--stage", "1", "--set", "projector.name=bogus")
    assert result.exit_code == 2 and "Error: --set: projector.name:" in result.output


def test_score_check_exits_1_when_a_target_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preds, refs = _score_files(tmp_path, ["전혀 다른 문장이다."] * 3)  # low METEOR, all identical
    args = ["score", preds, "--refs", refs, "--metrics", "meteor,diversity", "--tokenizer", "whitespace"]
    assert invoke(*args).exit_code == 0  # without --check: a report, not a gate
    gated = invoke(*args, "--check")
    assert gated.exit_code == 1, gated.output
    assert "--check: meteor" in gated.output and "mode collapse" in gated.output
    good_preds, _ = _score_files(tmp_path, TEXTS)
    passing = invoke("score", good_preds, "--refs", refs, "--metrics", "meteor", "--tokenizer", "whitespace", "--check")
    assert passing.exit_code == 0, passing.output


def test_default_metrics_skip_siglip_that_cannot_load_unless_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preds, refs = _score_files(tmp_path, TEXTS)
    # The built-in default metrics include siglip; that is not the user asking for it.
    (tmp_path / "kvcap.toml").write_text('[score]\ntokenizer = "whitespace"\n')
    skipped = invoke("score", preds, "--refs", refs, "--json")
    assert skipped.exit_code == 0, skipped.output
    assert "note: SigLIP2 skipped" in skipped.output
    summary = json.loads(skipped.output[skipped.output.index("{"):])["summary"]
    assert summary["metrics"] == ["meteor", "diversity"] and summary["meteor"] is not None
    (tmp_path / "asks.toml").write_text('[score]\nmetrics = ["meteor", "siglip"]\ntokenizer = "whitespace"\n')
    for typed in (["--metrics", "meteor,siglip"], ["--set", "score.metrics=siglip,meteor"],
                  ["--siglip", str(tmp_path / "no-such-siglip")], ["--config", "asks.toml"]):
        named = invoke("score", preds, "--refs", refs, *typed)
        assert named.exit_code == 2, (typed, named.output)
        assert "SigLIP2" in named.output and "note:" not in named.output


def test_ctrl_c_is_130_with_one_line_not_aborted(tmp_path):
    """A real SIGINT to a real `kvcap data synth` (Click alone would print "Aborted!", exit 1)."""
    import os

    proc = subprocess.Popen([sys.executable, "-m", "kvcap.cli", "data", "synth", "--out", str(tmp_path / "d"),
                             "--count", "2000", "--size", "32", "--seconds", "1", "--quiet"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((tmp_path / "d").rglob("*.mp4")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"


def test_errors_in_a_real_process_are_one_line(tmp_path):
    proc = kvcap("caption", tmp_path, "--checkpoint", tmp_path / "no-such-checkpoint", "-o", tmp_path / "out",
                 cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "no-such-checkpoint" in one_error_line(proc)


def test_import_aihub_of_nothing_does_not_claim_an_import(tmp_path):
    src = tmp_path / "aihub"
    (src / "labels").mkdir(parents=True)
    (src / "videos").mkdir()
    (src / "labels" / "a.json").write_text('{"annotation": {"description_kr": "바다가 보인다."}}', encoding="utf-8")
    (src / "videos" / "b.mp4").write_bytes(b"")  # a label and a video that don't pair
    result = invoke("data", "import-aihub", src, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "no label/video pairs" in result.output or "no label file yields a caption" in result.output
    assert not any(line.startswith("imported") for line in result.output.splitlines()), result.output


def test_score_without_torch_skips_siglip_with_a_note(tmp_path):
    """A real process in which `import torch` fails, as on an install without it."""
    import os

    preds, refs = _score_files(tmp_path, TEXTS)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from kvcap.cli import main\n"
            f"main(['score', {str(preds)!r}, '--refs', {str(refs)!r}, '--tokenizer', 'whitespace', '--json'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": SRC}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "note: SigLIP2 skipped (needs torch, which is not installed)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["summary"]["meteor"] > 0.99
    named = subprocess.run([sys.executable, "-c", code.replace("'--json'", "'--json', '--metrics', 'siglip'")],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": SRC}, stdin=subprocess.DEVNULL)
    assert named.returncode == 2 and "Error: SigLIP2: needs torch" in named.stderr, named.stderr
