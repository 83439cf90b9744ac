"""Output that goes to a log or a pipe, not a terminal: tables are whole, rows are not folded at
rich's 80-column default (nor at $COLUMNS), and no tqdm bar is drawn."""

from __future__ import annotations

import shutil

from cli_helpers import kvcap

# Deep enough that a path alone is wider than 80 columns, however short pytest's temp dir is.
LONG_DIR = "a-folder-name-long-enough-to-push-every-path-in-the-table-past-eighty-columns"


def test_probe_table_rows_stay_whole_when_output_is_not_a_terminal(tmp_path, video_zoo, monkeypatch):
    folder = tmp_path / LONG_DIR / LONG_DIR
    folder.mkdir(parents=True)
    good = folder / "good.mp4"
    shutil.copyfile(video_zoo.clips["h264"], good)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    monkeypatch.setenv("COLUMNS", "80")  # what a CI runner or a narrow pane may export
    proc = kvcap("probe", folder)
    assert proc.returncode == 1, proc.stderr  # one file cannot be read
    lines = proc.stdout.splitlines()
    # Each row on one line: the whole path beside its status.
    assert any(str(good) in line and "ok" in line for line in lines), proc.stdout
    assert any(str(empty) in line and "VideoEmpty" in line for line in lines), proc.stdout


def test_data_synth_draws_no_progress_bar_into_a_log(tmp_path):
    proc = kvcap("data", "synth", "--out", tmp_path / "d", "--count", "3", "--seed", "5", "--size", "32",
                 "--seconds", "1", "--fps", "8")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d" / "train.jsonl").exists() or any((tmp_path / "d").glob("*.jsonl"))
    assert "\r" not in proc.stderr and "clip/s" not in proc.stderr and "synth:" not in proc.stderr, proc.stderr
