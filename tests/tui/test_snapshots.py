"""Snapshot tests of the main screens at 80x24 and 160x48 (fixed clock: nothing depends on "now").

Regenerate after an intended change of the look:
    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


async def _open_detail(pilot, downs: int, tab: str | None = None) -> None:
    await pilot.press(*(["down"] * downs), "enter")
    await pilot.pause()
    if tab:
        pilot.app.screen.query_one("#detail-tabs").active = tab
        await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_run_detail_curves(snap_compare, make_app, size) -> None:
    async def before(pilot):
        await _open_detail(pilot, 3)  # linear-done

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_run_detail_collapsed_eval(snap_compare, make_app, size) -> None:
    async def before(pilot):
        await _open_detail(pilot, 4, "eval-tab")  # mlp-collapsed

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_run_detail_samples(snap_compare, make_app) -> None:
    async def before(pilot):
        await _open_detail(pilot, 0, "samples-tab")  # mlp-running: Korean beside references

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_job_screen(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, press=["tab", "enter"])


def test_compare_screen(snap_compare, make_app) -> None:
    assert snap_compare(make_app(), terminal_size=(160, 48), press=["down", "down", "down", "space", "space", "c"])


def test_runs_screen_light_theme(snap_compare, make_app) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), press=["t"])
