"""Fixture run directories and app factories for the TUI tests (see fixture_runs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fixture_runs, importable by the tests here

from fixture_runs import NOW, make_job, make_runs  # noqa: E402


@pytest.fixture
def fixture_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(runs folder with running/finished/failed/stale/collapsed runs, a caption output folder)."""
    return make_runs(tmp_path / "runs"), make_job(tmp_path / "out")


@pytest.fixture
def make_app(fixture_dirs):
    """Build the app over the fixtures with the fixed clock; `refresh=0` means no timer."""
    from kvcap.tui.app import create_app

    runs, out = fixture_dirs

    def build(refresh: float = 0, clock=lambda: NOW):
        return create_app([runs], [out], refresh=refresh, clock=clock)

    return build
