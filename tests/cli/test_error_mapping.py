"""Errors become exit codes in one place (`kvcap.cli.user_error_line`): no command wraps them.

Each case below was once a command's own `except ... -> ClickException`; through the real CLI
(a subprocess) each still prints one `Error:` line, no traceback, and exits 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kvcap.cli import user_error_line
from kvcap.errors import EXIT_USAGE, KvcapError

from cli_helpers import kvcap, one_error_line


def _usage_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == EXIT_USAGE, (proc.returncode, proc.stderr)
    return one_error_line(proc)


def test_the_one_mapping_function():
    assert user_error_line(KvcapError("x.json: bad\n  line two")) == "x.json: bad line two"
    assert user_error_line(PermissionError(13, "Permission denied", "/out")) == "/out: Permission denied"
    # an OSError without a file (a model hub's): its first line, the advice after it left out
    assert user_error_line(OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection")) == (
        "We couldn't connect to 'https://huggingface.co'.")
    assert user_error_line(ValueError("a bug")) is None  # not a user error: its traceback is shown
    assert user_error_line(KeyError("k")) is None


# (args, words in the line): each a case a command's own wrapper used to handle
WITHOUT_TORCH = [
    (["caption", "merge", "empty"], "empty: no shard parts"),  # caption merge: ShardError
    (["compare", "empty/nope"], "empty/nope: no such run directory"),  # compare: KvcapError
    (["data", "import-aihub", "empty", "--out", "o"], "empty: no label .json files"),  # AIHubImportError
    (["score", "missing.jsonl", "--refs", "refs.jsonl"], "missing.jsonl: predictions file not found"),
    (["score", "preds.jsonl", "--refs", "refs_attr.jsonl", "--grounding", "--metrics", "meteor"],  # grounding
     "refs_attr.jsonl:1: 'attributes' must be an object"),
    (["export", "notckpt", "o2"], "notckpt: not a kvcap checkpoint"),  # export: CheckpointError
    (["projectors", "--set", "model.vision=acme/unknown-vit"], "pass --vision-dim and --patches"),  # DimsError
    (["probe", "bad.jsonl"], "bad.jsonl:1: not valid JSON"),  # probe: a bad manifest
    (["data", "synth", "--out", "bad.jsonl/x", "--count", "1", "--quiet"], "bad.jsonl/x/clips: Not a directory"),
]


@pytest.mark.parametrize("args, words", WITHOUT_TORCH, ids=[" ".join(a[:2]) for a, _ in WITHOUT_TORCH])
def test_former_wrappers_without_torch_are_one_line(tmp_path, args, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"id": 1\n')
    (tmp_path / "refs.jsonl").write_text("")
    (tmp_path / "notckpt").mkdir()
    (tmp_path / "preds.jsonl").write_text(json.dumps({"id": "c0", "caption": "바다 위로 해가 진다."}) + "\n")
    (tmp_path / "refs_attr.jsonl").write_text(json.dumps({"id": "c0", "video": "c0.mp4", "caption": "해가 진다.",
                                                          "attributes": "x"}) + "\n")
    line = _usage_error(kvcap(*args, cwd=tmp_path))
    assert words in line, line


@pytest.mark.slow  # five real CLI runs that each load torch (and two the tiny model)
def test_former_wrappers_that_load_torch_are_one_line(tmp_path, tiny_checkpoint, video_zoo):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(json.dumps({"id": "a", "video": "a.mp4", "caption": "x", "split": "train"}) + "\n")
    bad.write_text('{"id": 1\n')
    assert "bad.jsonl:1: not valid JSON" in _usage_error(kvcap("cache", "build", bad))  # cache: ManifestError
    line = _usage_error(kvcap("train", "--stage", "1", "--resume", "--run", tmp_path / "nope"))  # train: KvcapError
    assert "nope: nothing to resume" in line
    # cache: the vision tower not on this machine and no hub (issue 22: the setting, before any retries)
    line = _usage_error(kvcap("cache", "build", good, "--set", "model.vision=acme/not-there", cwd=tmp_path))
    assert line.startswith("Error: model.vision = acme/not-there: not a local folder")
    # cache: a ValueError of the vision tower (a layer it does not have)
    line = _usage_error(kvcap("cache", "build", good, "--set", "model.vision=tiny:clip8",
                              "--set", "model.vision_layer=40", cwd=tmp_path))
    assert "vision layer 40 out of range for tiny:clip8" in line
    # demo and caption: a device this machine lacks (was a ValueError mapped by caption)
    assert "device cuda: CUDA is not available" in _usage_error(kvcap("demo", "--device", "cuda", "--out", "d"))
    clip = video_zoo.clips["h264"]
    line = _usage_error(kvcap("caption", clip, "--checkpoint", tiny_checkpoint, "--device", "cuda", "-o", tmp_path / "o"))
    assert "device cuda: CUDA is not available" in line
    # caption: a checkpoint whose projector weights are damaged (loading it)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "projector.safetensors").write_bytes(b"not safetensors")
    line = _usage_error(kvcap("caption", clip, "--checkpoint", broken, "--device", "cpu", "-o", tmp_path / "o"))
    assert "projector.safetensors" in line


def test_a_locked_job_is_one_line(tmp_path, tiny_checkpoint, video_zoo):
    """caption's job wrapper: another live process holds OUT's captions lock (JobLockedError)."""
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"f = open({str(out / '.captions.lock')!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        "print('held', flush=True); time.sleep(120)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = kvcap("caption", video_zoo.clips["h264"], "--checkpoint", tiny_checkpoint, "--device", "cpu", "-o", out)
        line = _usage_error(proc)
        assert "captions" in line and "\n" not in line
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("module", ["caption", "cache", "compare", "data_aihub", "data_synth", "demo", "export",
                                    "probe", "projectors", "score", "train"])
def test_no_command_maps_errors_itself(module):
    """kvcap.cli alone turns errors into exit codes: no `except ...: raise ClickException`."""
    import ast
    from pathlib import Path

    import kvcap.commands

    source = (Path(kvcap.commands.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler):
            raised = [n for n in ast.walk(node) if isinstance(n, ast.Raise) and n.exc is not None]
            assert not any("ClickException" in ast.unparse(r.exc) for r in raised), (module, ast.unparse(node))
