"""`kvcap probe` over the zoo, and the CLI's import weight."""

import json
import subprocess
import sys
import time

from click.testing import CliRunner

from kvcap.cli import main


def test_probe_table_has_a_row_per_file_and_exits_1_on_errors(video_zoo):
    result = CliRunner().invoke(main, ["probe", str(video_zoo.root)], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    for path in [*video_zoo.good, *video_zoo.broken.values()]:
        assert path.name in result.output
    total = len(video_zoo.good) + len(video_zoo.broken)
    assert f"{len(video_zoo.good)} readable, {len(video_zoo.broken)} failed" in result.output
    assert f"{total} file(s)" in result.output
    assert "NotAVideo" in result.output and "no video stream" in result.output


def test_probe_json_parses_with_errors_included(video_zoo):
    result = CliRunner().invoke(main, ["probe", "--json", str(video_zoo.root)])
    assert result.exit_code == 1
    records = json.loads(result.output)
    by_path = {r["path"]: r for r in records}
    assert len(records) == len(video_zoo.good) + len(video_zoo.broken)
    for kind, path in video_zoo.broken.items():
        assert by_path[str(path)]["status"] == "error"
        assert by_path[str(path)]["error_type"] == video_zoo.broken_errors[kind]
    rotated = by_path[str(video_zoo.clips["rotated"])]
    assert rotated["status"] == "ok" and rotated["rotation"] == 90 and rotated["height"] > rotated["width"]


def test_probe_exits_0_when_all_readable(video_zoo):
    result = CliRunner().invoke(main, ["probe", str(video_zoo.clips["h264"]), str(video_zoo.clips["korean"])])
    assert result.exit_code == 0, result.output
    assert "2 readable, 0 failed" in result.output


def test_probe_decord_backend_reports_av1_as_unreadable(video_zoo):
    result = CliRunner().invoke(main, ["probe", "--json", "--backend", "decord", str(video_zoo.clips["av1"])])
    assert result.exit_code == 1
    (record,) = json.loads(result.output)
    assert record["error_type"] == "VideoUnreadable"


def test_import_cli_loads_neither_torch_nor_textual_and_help_is_fast():
    code = (
        "import sys, kvcap.cli, kvcap.commands.probe\n"
        "heavy = sorted(m for m in ('torch', 'textual', 'av', 'decord', 'transformers', 'ray') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""

    # `kvcap --help`, best of three (the machine is shared; one slow start is not the code's fault)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "kvcap.cli", "--help"], capture_output=True, text=True, timeout=60)
        best = min(best, time.perf_counter() - t0)
        assert proc.returncode == 0 and "probe" in proc.stdout, proc.stderr
    assert best < 1.0, f"kvcap --help took {best:.2f} s"
