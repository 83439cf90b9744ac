"""Pilot tests: drive the app over the fixture runs and a caption job; assert what each screen shows."""

from __future__ import annotations

import asyncio
import json
import shutil

from fixture_runs import NOW, eval_row, iso, train_rows
from textual.widgets import DataTable, Static, TabbedContent

SIZE = (120, 36)


def run(coro):
    return asyncio.run(coro)


def cell_text(table: DataTable, row_key: str, column: str) -> str:
    return str(table.get_cell(row_key, column))


def table_column(table: DataTable, column: str) -> list[str]:
    return [str(table.get_cell_at((row, table.get_column_index(column)))) for row in range(table.row_count)]


def static_text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app's refresh timer run until `condition()` holds (a loaded CI box can be slow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the app did not pick up the change in time"
        await pilot.pause(0.05)


def test_runs_table_shows_each_fixture_with_its_status(make_app, fixture_dirs) -> None:
    runs_dir, _ = fixture_dirs

    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            assert table.row_count == 5
            names = table_column(table, "name")
            statuses = dict(zip(names, table_column(table, "status")))
            assert statuses == {"mlp-running": "running", "cabs-stale": "stale", "perceiver-oom": "failed",
                                "linear-done": "finished", "mlp-collapsed": "finished"}
            assert names[0] == "mlp-running"  # running first, then what needs attention
            assert names == ["mlp-running", "cabs-stale", "perceiver-oom", "linear-done", "mlp-collapsed"]
            key = str(runs_dir / "mlp-running")
            assert cell_text(table, key, "progress").endswith("120/400")
            assert cell_text(table, key, "eta") == "9m20s"
            assert cell_text(table, key, "meteor") == "0.312"
            assert cell_text(table, str(runs_dir / "mlp-collapsed"), "collapse") == "⚠ yes"
            assert cell_text(table, str(runs_dir / "linear-done"), "collapse") == "–"
            await pilot.press("q")
        assert app.return_code == 0

    run(go())


def test_detail_of_collapsed_run_shows_alarm_and_pass_fail(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "down", "down", "down", "enter")  # mlp-collapsed, the last row
            await pilot.pause()
            screen = app.screen
            assert type(screen).__name__ == "RunDetailScreen" and screen.reader.name == "mlp-collapsed"
            alarm = screen.query_one("#collapse-alarm", Static)
            assert alarm.display
            assert "MODE COLLAPSE" in static_text(screen, "#collapse-alarm")
            assert "unique captions 10%" in static_text(screen, "#collapse-alarm")
            evals = screen.query_one("#evals", DataTable)
            assert evals.row_count == 2
            assert table_column(evals, "meteor") == ["0.180 ✗", "0.220 ✗"]
            assert table_column(evals, "siglip") == ["0.310 ✓", "0.350 ✓"]
            assert table_column(evals, "diversity") == ["0.410 ✗", "0.080 ✗"]
            assert table_column(evals, "collapse") == ["no", "⚠ yes"]
            await pilot.press("escape")
            assert type(app.screen).__name__ == "MainScreen"

    run(go())


def test_detail_of_finished_run_has_curves_samples_and_config(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "down", "down", "enter")  # linear-done
            await pilot.pause()
            screen = app.screen
            assert screen.reader.name == "linear-done"
            assert not screen.query_one("#collapse-alarm", Static).display
            evals = screen.query_one("#evals", DataTable)
            assert table_column(evals, "meteor") == ["0.385 ✗", "0.423 ✓"]
            loss_x, loss_y = screen.query_one("#loss-curve").points
            assert len(loss_x) == 300 and loss_x[-1] == 300
            tabs = screen.query_one("#detail-tabs", TabbedContent)
            tabs.active = "samples-tab"
            await pilot.pause()
            texts = [str(w.render()) for w in screen.query(".prediction, .reference")]
            assert any("수평선" in t for t in texts) and len(texts) == 6
            tabs.active = "config-tab"
            await pilot.pause()
            assert 'name = "linear"' in static_text(screen, "#config")

    run(go())


def test_failed_run_shows_its_error(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "down", "enter")  # perceiver-oom
            await pilot.pause()
            assert "CUDA out of memory" in static_text(app.screen, "#run-summary")

    run(go())


def test_job_view_shows_progress_and_failures(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("tab")
            assert app.screen.query_one("#tabs", TabbedContent).active == "jobs-tab"
            jobs = app.screen.query_one("#jobs", DataTable)
            assert table_column(jobs, "status") == ["running"]
            assert table_column(jobs, "progress")[0].endswith("40/100")
            assert table_column(jobs, "failed") == ["3"]
            await pilot.press("enter")
            await pilot.pause()
            screen = app.screen
            summary = static_text(screen, "#job-summary")
            assert "40/100 done" in summary and "failed 3" in summary and "0.50 videos/s" in summary
            assert "ETA 2m00s" in summary
            assert screen.query_one("#job-progress").percentage == 0.4
            failures = screen.query_one("#job-failures", DataTable)
            assert dict(zip(table_column(failures, "video"), table_column(failures, "reason"))) == {
                "videos/bad_005.mp4": "not a video (no video stream)",
                "videos/bad_017.mp4": "corrupt: moov atom not found",
                "videos/bad_033.mp4": "empty file (0 bytes)",
            }
            captions = [str(w.render()) for w in screen.query(".caption")]
            assert len(captions) == 20 and "바다" in captions[0]
            await pilot.press("escape", "tab")
            assert app.screen.query_one("#tabs", TabbedContent).active == "runs-tab"

    run(go())


def test_compare_marked_runs(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "down", "down", "space", "space")  # linear-done, mlp-collapsed
            assert table_column(app.screen.query_one("#runs", DataTable), "mark").count("●") == 2
            await pilot.press("c")
            await pilot.pause()
            table = app.screen.query_one("#compare", DataTable)
            assert table_column(table, "name") == ["linear-done", "mlp-collapsed"]
            assert table_column(table, "params") == ["4.2M", "–"]
            assert table_column(table, "tokens") == ["4,608", "–"]
            assert table_column(table, "time") == ["1h30m", "–"]
            assert table_column(table, "meteor") == ["0.423 ✓", "0.220 ✗"]
            assert table_column(table, "collapse") == ["no", "⚠ yes"]

    run(go())


def test_help_opens_and_closes(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            assert type(app.screen).__name__ == "MainScreen"

    run(go())


def test_appended_metrics_appear_live(make_app, fixture_dirs) -> None:
    """A trainer appending lines (one torn at first) while the app runs: the app picks them up."""
    runs_dir, _ = fixture_dirs
    run_dir = runs_dir / "mlp-running"
    key = str(run_dir)

    async def go():
        app = make_app(refresh=0.05)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            assert cell_text(table, key, "loss") == "1.498"
            await pilot.press("enter")  # mlp-running is the first row
            await pilot.pause()
            detail = app.screen
            assert detail.query_one("#evals", DataTable).row_count == 1
            line = dict(train_rows(1, range(121, 122), NOW - 240, 2.0, 1e-3)[0], loss=0.5)
            new_eval = eval_row(1, 121, 2, 0.45, 0.2, 0.7, t=NOW)
            with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
                text = json.dumps(new_eval)
                handle.write(text[:20])  # torn: the writer has not finished this line
                handle.flush()
                await wait_for(pilot, lambda: len(detail.reader.train) == 121)
                await pilot.pause(0.2)  # a few more ticks: the torn eval line must stay unread
                assert detail.query_one("#evals", DataTable).row_count == 1
                handle.write(text[20:] + "\n")
            evals = detail.query_one("#evals", DataTable)
            await wait_for(pilot, lambda: evals.row_count == 2)
            assert table_column(evals, "meteor")[-1] == "0.450 ✓"
            assert "loss 0.500" in static_text(detail, "#run-summary")
            await pilot.press("escape")
            assert cell_text(table, key, "loss") == "0.500"
            assert cell_text(table, key, "meteor") == "0.450"

    run(go())


def test_new_run_and_deleted_run_while_shown(make_app, fixture_dirs) -> None:
    runs_dir, _ = fixture_dirs

    async def go():
        app = make_app(refresh=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "down", "down", "enter")  # linear-done
            await pilot.pause()
            shutil.rmtree(runs_dir / "linear-done")
            await wait_for(pilot, lambda: "run directory deleted" in static_text(app.screen, "#run-summary"))
            assert app.screen.query_one("#evals", DataTable).row_count == 2  # still shows what it read
            # a run that starts while we watch
            new = runs_dir / "new-run"
            new.mkdir()
            (new / "state.json").write_text(json.dumps({"name": "new-run", "status": "running", "pid": 0,
                                                        "step": 0, "total_steps": 10, "updated": iso(NOW)}))
            await pilot.press("escape")
            table = app.screen.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: table.row_count == 6)
            statuses = dict(zip(table_column(table, "name"), table_column(table, "status")))
            assert statuses["linear-done"] == "gone"
            assert statuses["new-run"] == "running"

    run(go())


def test_mouse_opens_a_run_and_theme_switch_recolours(make_app) -> None:
    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#runs", DataTable)
            before = table.get_cell_at((0, table.get_column_index("status")))
            await pilot.press("t")  # light theme: cells are redrawn from the new theme's colours
            await pilot.pause()
            after = table.get_cell_at((0, table.get_column_index("status")))
            assert app.theme == "textual-light"
            assert str(before) == str(after) == "running" and before.style != after.style
            await pilot.click("#runs", offset=(6, 2))  # second data row: cabs-stale
            await pilot.pause()
            if type(app.screen).__name__ != "RunDetailScreen":  # textual >= 8: a first click only highlights
                await pilot.click("#runs", offset=(6, 2))  # clicking the highlighted row opens it
            await pilot.pause()
            assert type(app.screen).__name__ == "RunDetailScreen" and app.screen.reader.name == "cabs-stale"
            assert "stale" in static_text(app.screen, "#run-summary")

    run(go())


def test_cli_help_and_default_runs_dir(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from kvcap.commands.tui import tui

    result = CliRunner().invoke(tui, ["--help"])
    assert result.exit_code == 0 and "--jobs" in result.output and "--refresh" in result.output
    (tmp_path / "bad.toml").write_text("[train]\nruns_dir = 3\n")
    result = CliRunner().invoke(tui, ["--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2 and "train.runs_dir" in result.output


def test_job_view_shows_the_generation_settings_used(make_app, fixture_dirs) -> None:
    _, out = fixture_dirs
    state = json.loads((out / "job.json").read_text(encoding="utf-8"))
    state["generation"] = {"max_new_tokens": 64, "num_beams": 1, "do_sample": True, "temperature": 0.9,
                           "top_p": 0.8, "repetition_penalty": 1.05, "no_repeat_ngram_size": 0,
                           "prompt": "장면을 한 문장으로 설명해 주세요."}
    (out / "job.json").write_text(json.dumps(state), encoding="utf-8")

    async def go():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("tab", "enter")
            await pilot.pause()
            summary = static_text(app.screen, "#job-summary")
            assert "sampling t=0.9 top-p=0.8" in summary and "max 64 tokens" in summary
            assert '"장면을 한 문장으로 설명해 주세요."' in summary

    run(go())
