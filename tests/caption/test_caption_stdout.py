"""What `kvcap caption` shows on stdout: cues on a terminal (once each), JSONL with `-o -`,
nothing with --quiet or off a terminal; the generation flags; `--segment scenes` from the CLI."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures.shots import FPS, write_shots
from kvcap.cli import main
from kvcap.commands.caption import DEMO_NOTE, generation_flags

SRC = str(Path(__file__).resolve().parents[2] / "src")


def kvcap_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_in_pty(args: list[str], cwd: Path, timeout: float = 180) -> tuple[int, str]:
    """Run `python -m kvcap.cli ARGS` with stdout and stderr on a pseudo-terminal; (rc, all output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kvcap.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, cwd=cwd, env=kvcap_env())
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    rc = proc.wait(timeout=30)
    return rc, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def shots_folder(tmp_path):
    root = tmp_path / "videos"
    write_shots(root / "three.mp4", [("testsrc", 1.0), ("smptebars", 1.4), ("mandelbrot", 1.2)])
    write_shots(root / "one.mp4", [("testsrc", 1.5)])
    return root


def records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow  # a kvcap subprocess: torch and the model load in it
def test_a_terminal_run_prints_each_caption_once(shots_folder, tmp_path):
    """Under a pty (so the tqdm bar is live on the same terminal) with the demo model."""
    rc, output = run_in_pty(["caption", str(shots_folder), "--checkpoint", "demo", "-o", str(tmp_path / "out"),
                             "--segment", "scenes", "--max-new-tokens", "24"], tmp_path)
    assert rc == 0, output
    records = records_of(tmp_path / "out" / "captions.jsonl")
    lines = [line.strip("\r") for line in output.replace("\r\n", "\n").split("\n")]
    assert output.count(DEMO_NOTE) == 1
    for record in records:
        assert lines.count(record["video"]) == 1  # the video's heading, once
        for segment in record["segments"]:
            cue = [line for line in lines if "-->" in line and line.endswith("  " + segment["text"])]
            assert len(cue) == 1, (segment, output)
    assert sum("-->" in line for line in lines) == sum(len(r["segments"]) for r in records) == 3 + 1


@pytest.mark.slow  # a kvcap subprocess: torch and the model load in it
def test_quiet_and_non_terminal_runs_print_no_captions(shots_folder, tiny_checkpoint, tmp_path):
    rc, output = run_in_pty(["caption", str(shots_folder), "--checkpoint", str(tiny_checkpoint), "-o",
                             str(tmp_path / "q"), "--quiet", "--max-new-tokens", "4"], tmp_path)
    assert rc == 0, output
    assert "-->" not in output and "finished: 2 ok" in output
    result = CliRunner().invoke(main, ["caption", str(shots_folder), "--checkpoint", str(tiny_checkpoint), "-o",
                                       str(tmp_path / "plain"), "--max-new-tokens", "4"], catch_exceptions=False)
    assert result.exit_code == 0 and "-->" not in result.output  # stdout is not a terminal


@pytest.mark.slow  # a kvcap subprocess: torch and the model load in it
def test_dash_output_writes_records_to_stdout_and_no_files(shots_folder, tiny_checkpoint, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "kvcap.cli", "caption", str(shots_folder), "--checkpoint",
                           str(tiny_checkpoint), "-o", "-", "--max-new-tokens", "4", "--segment", "scenes"],
                          capture_output=True, text=True, cwd=work, env=kvcap_env(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(r["video"] for r in records) == ["one.mp4", "three.mp4"]
    assert all(r["status"] == "ok" for r in records)
    assert len(next(r for r in records if r["video"] == "three.mp4")["segments"]) == 3
    assert "finished: 2 ok" in proc.stderr and "-> stdout" in proc.stderr  # progress and summary on stderr
    assert list(work.iterdir()) == [] and not (shots_folder / "captions.jsonl").exists()  # no ledger
    bad = CliRunner().invoke(main, ["caption", str(shots_folder), "--checkpoint", "x", "-o", "-", "-f", "srt"])
    assert bad.exit_code == 2 and "-o - writes the JSONL records to stdout" in bad.output


def test_generation_flags_are_the_top_layer_and_reach_job_json(shots_folder, tiny_checkpoint, tmp_path):
    assert generation_flags() == {}
    assert generation_flags(temperature=0.0) == {"generation.do_sample": False}  # 0 = greedy
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "caption", str(shots_folder / "one.mp4"), "--checkpoint", str(tiny_checkpoint), "-o", str(out),
        "--set", "generation.max_new_tokens=50", "--set", "generation.num_beams=3",
        "--max-new-tokens", "3", "--temperature", "0.9", "--prompt", "한 문장으로 설명해 주세요.",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    used = json.loads((out / "job.json").read_text(encoding="utf-8"))["generation"]
    assert used["max_new_tokens"] == 3  # the flag wins over --set
    assert used["num_beams"] == 3  # --set still applies where no flag is given
    assert used["do_sample"] is True and used["temperature"] == 0.9
    assert used["prompt"] == "한 문장으로 설명해 주세요."
    (record,) = records_of(out / "captions.jsonl")
    assert record["status"] == "ok"


def test_segment_scenes_from_the_command_line(shots_folder, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["caption", str(shots_folder), "--checkpoint", str(tiny_checkpoint), "-o",
                                       str(out), "--segment", "scenes", "--max-new-tokens", "3"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    by_video = {r["video"]: r for r in records_of(out / "captions.jsonl")}
    starts = [s["start"] for s in by_video["three.mp4"]["segments"]]
    assert len(starts) == 3 and abs(starts[1] - 1.0) <= 1 / FPS and abs(starts[2] - 2.4) <= 1 / FPS
    assert len(by_video["one.mp4"]["segments"]) == 1
    bad = CliRunner().invoke(main, ["caption", str(shots_folder), "--checkpoint", "x", "--segment", "shots"])
    assert bad.exit_code == 2 and "'shots' is neither a number nor scenes" in bad.output
