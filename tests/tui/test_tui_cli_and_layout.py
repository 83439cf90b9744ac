"""`kvcap tui` without a terminal or runs folder; columns that follow content; ←/→ tabs; shards."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from fixture_runs import NOW, make_run, train_rows
from textual.widgets import DataTable, TabbedContent

SRC = str(Path(__file__).resolve().parents[2] / "src")
SIZE = (120, 36)


def kvcap_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command with stdin from /dev/null and stdout to a pipe: no terminal at all."""
    return subprocess.run([sys.executable, "-m", "kvcap.cli", "tui", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC})


def test_no_terminal_is_one_line_and_exit_2_not_a_spin(tmp_path):
    (tmp_path / "runs").mkdir()
    proc = kvcap_tui("runs", cwd=tmp_path)  # the timeout above is the "no spin" check
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "needs a terminal" in proc.stderr


def test_missing_runs_folder_is_an_error_unless_wait(tmp_path):
    proc = kvcap_tui("nowhere", cwd=tmp_path)
    assert proc.returncode == 2 and "runs folder nowhere: no such folder" in proc.stderr and "--wait" in proc.stderr
    missing_job = kvcap_tui("--jobs", "no-out", cwd=tmp_path)  # default runs_dir missing too: named first
    assert missing_job.returncode == 2 and "no such folder" in missing_job.stderr
    waiting = kvcap_tui("nowhere", "--wait", cwd=tmp_path)
    assert waiting.returncode == 2 and "needs a terminal" in waiting.stderr  # past the folder check


def _run(coro):
    return asyncio.run(coro)


def test_columns_follow_content_when_opened_before_any_run(tmp_path):
    from kvcap.tui.app import create_app

    runs = tmp_path / "runs"
    runs.mkdir()
    app = create_app([runs], [], refresh=0, clock=lambda: NOW)

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            make_run(runs, "r", status="running", projector="linear", stage=1, step=3, total=3, pid=os.getpid(),
                     updated=NOW, train=train_rows(1, range(1, 4), NOW - 10, 1.0, 1e-3), evals=[])
            app.tick()
            await pilot.pause()
            state = json.loads((runs / "r" / "state.json").read_text())
            state.update(status="finished", step=360, total_steps=360)
            (runs / "r" / "state.json").write_text(json.dumps(state))
            os.utime(runs / "r" / "state.json", (NOW + 5, NOW + 5))
            app.tick()
            await pilot.pause()
            table = app.screen.query_one("#runs", DataTable)
            status = next(c for c in table.columns.values() if c.key.value == "status")
            step = next(c for c in table.columns.values() if c.key.value == "progress")
            cells = {c.key.value: str(table.get_cell(str(runs / "r"), c.key.value)) for c in (status, step)}
            assert "finished" in cells["status"] and "360/360" in cells["progress"], cells
            assert status.content_width >= len("finished")
            assert step.content_width >= len(cells["progress"].strip())

    _run(go())


def test_left_right_step_through_a_runs_tabs_and_help_says_so(make_app):
    from kvcap.tui.screens import HELP_TEXT

    assert "← →" in HELP_TEXT and "Curves" in HELP_TEXT

    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot.pause()
            tabs = app.screen.query_one("#detail-tabs", TabbedContent)
            assert tabs.active == "curves-tab"
            await pilot.press("right")
            assert tabs.active == "eval-tab"
            await pilot.press("right", "right", "right")
            assert tabs.active == "curves-tab"  # wraps around
            await pilot.press("left")
            assert tabs.active == "config-tab"

    _run(go())


def test_merged_shard_folder_lists_its_shards_not_an_unknown_job(tmp_path):
    from kvcap.tui.jobfiles import job_parts

    out = tmp_path / "out"
    out.mkdir()
    for i in range(2):
        (out / f"job.shard-{i}-of-2.json").write_text("{}")
        (out / f"captions.shard-{i}-of-2.jsonl").write_text("")
    assert job_parts(out) == ["shard-0-of-2", "shard-1-of-2"]
    (out / "captions.jsonl").write_text("")  # `kvcap caption merge` output
    assert job_parts(out) == ["shard-0-of-2", "shard-1-of-2"]
    (out / "job.json").write_text("{}")  # an unsharded job ran here too
    assert job_parts(out) == [None, "shard-0-of-2", "shard-1-of-2"]


def test_jobs_takes_several_folders(tmp_path):
    from fixture_runs import make_job

    from kvcap.commands.tui import tui

    for name in ("runs", "a", "b"):
        (tmp_path / name).mkdir()
    # the real command: `missing` after --jobs is a jobs folder, not a runs folder taken silently
    proc = kvcap_tui("runs", "--jobs", "a", "b", "missing", cwd=tmp_path)
    assert proc.returncode == 2 and "--jobs folder missing: no such folder" in proc.stderr, proc.stderr
    ctx = tui.make_context("tui", ["runs", "--jobs", "a", "b", "c", "--refresh", "1", "--jobs", "d"])
    assert ctx.params["runs_dirs"] == ("runs",) and ctx.params["job_dirs"] == ("a", "b", "c", "d")

    from kvcap.tui.app import create_app

    app = create_app([tmp_path / "runs"], [make_job(tmp_path / "a"), make_job(tmp_path / "b")], refresh=0,
                     clock=lambda: NOW)
    assert sorted(app.jobs) == [f"{tmp_path / 'a'}#", f"{tmp_path / 'b'}#"]


def test_job_folders_under_a_runs_folder_fill_the_jobs_tab(tmp_path):
    from fixture_runs import make_job, make_runs

    from kvcap.tui.app import create_app

    runs = make_runs(tmp_path / "runs")
    make_job(runs / "captions-out")  # a `kvcap caption -o runs/captions-out` beside the runs
    app = create_app([runs], [], refresh=0, clock=lambda: NOW)

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("tab")
            assert app.screen.query_one("#tabs", TabbedContent).active == "jobs-tab"
            jobs = app.screen.query_one("#jobs", DataTable)
            assert jobs.row_count == 1 and not app.screen.query_one("#jobs-empty").display
            assert "captions-out" not in {str(k) for k in app.runs}  # a job, not a run

    _run(go())
