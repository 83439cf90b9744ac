"""The `kvcap tui` Textual app: built by `create_app(run_dirs, job_dirs)`.

The app owns the readers (kvcap.tui.runfiles, kvcap.tui.jobfiles) and one timer. Each tick it finds new run/job
directories, lets every reader pick up what was appended since the last tick, then asks the
visible screen to update itself in place (cells, not whole tables, so nothing flickers).
File reading is incremental and cheap, so it runs on the UI thread between frames.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from kvcap.records import PidAlive, pid_alive
from kvcap.tui.format import DASH, STATUS_ORDER, fmt_duration, fmt_float, fmt_progress
from kvcap.tui.jobfiles import JobReader, is_job_dir, job_parts
from kvcap.tui.runfiles import Clock, RunReader, discover, is_run_dir
from kvcap.tui.style import status_text, styled

RUN_COLUMNS = [
    # most telling first: at 80 columns the last ones scroll off to the right
    ("mark", " "), ("name", "Run"), ("status", "Status"), ("progress", "Step"), ("eta", "ETA"),
    ("loss", "Loss"), ("meteor", "METEOR"), ("collapse", "Collapse"), ("projector", "Projector"), ("stage", "Stage"),
]
JOB_COLUMNS = [
    ("name", "Output"), ("status", "Status"), ("progress", "Done"), ("rate", "Videos/s"),
    ("eta", "ETA"), ("failed", "Failed"), ("checkpoint", "Checkpoint"),
]


class MainScreen(Screen):
    """Runs and caption jobs, one tab each."""

    BINDINGS = [
        Binding("tab", "switch_tab", "Runs/Jobs", priority=True),
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # what each cell shows now, so a tick only touches the cells that changed
        self._run_cells: dict[str, dict[str, object]] = {}
        self._job_cells: dict[str, dict[str, object]] = {}
        self._order: list[str] = []
        self._mounted = False

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="tabs"):
            with TabPane("Runs", id="runs-tab"):
                yield Static("No runs yet.", id="runs-empty", classes="empty")
                yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            with TabPane("Caption jobs", id="jobs-tab"):
                yield Static("No caption jobs (kvcap tui --jobs OUT_DIR..., or an output folder in a runs folder).",
                             id="jobs-empty", classes="empty")
                yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        for key, label in RUN_COLUMNS:
            runs.add_column(label, key=key)
        jobs = self.query_one("#jobs", DataTable)
        for key, label in JOB_COLUMNS:
            jobs.add_column(label, key=key)
        self._mounted = True
        self.update_view()
        runs.focus()

    # -- live update -------------------------------------------------------------------------
    def update_view(self) -> None:
        if not self._mounted:  # a timer tick can come before the tables exist
            return
        app: KvcapTui = self.app  # type: ignore[assignment]
        self._update_runs(app)
        self._update_jobs(app)

    def repaint(self) -> None:
        """Forget what was drawn (e.g. after a theme change) and draw every cell again."""
        for cells in (*self._run_cells.values(), *self._job_cells.values()):
            cells.clear()
        self.update_view()

    def _update_runs(self, app: "KvcapTui") -> None:
        table = self.query_one("#runs", DataTable)
        now = app.clock()
        ranks: dict[str, tuple[int, str]] = {}
        for key, reader in app.runs.items():
            row = reader.row(now, app.pid_alive)
            ranks[key] = (STATUS_ORDER.get(row.status, 9), row.name)
            values = {
                "mark": styled(self.app, "●", "accent") if key in app.marked else " ",
                "name": row.name,
                "status": status_text(self.app, row.status),
                "progress": fmt_progress(row.step, row.total_steps, width=6),
                "eta": fmt_duration(row.eta_s) if row.status == "running" else DASH,
                "loss": fmt_float(row.last_loss),
                "meteor": fmt_float(row.best_meteor),
                "collapse": styled(self.app, "⚠ yes", "error") if row.collapse else DASH,
                "projector": row.projector or DASH,
                "stage": row.stage or DASH,
            }
            self._put_row(table, self._run_cells, key, values)
        self.query_one("#runs-empty").display = not app.runs
        order = sorted(ranks, key=lambda k: ranks[k])
        if order != self._order:
            self._order = order
            table.sort("status", "name", key=lambda row: (STATUS_ORDER.get(str(row[0]), 9), str(row[1])))

    def _update_jobs(self, app: "KvcapTui") -> None:
        table = self.query_one("#jobs", DataTable)
        now = app.clock()
        for key, reader in app.jobs.items():
            state = reader.state
            status = reader.status(now, app.pid_alive)
            values = {
                "name": reader.name,
                "status": status_text(self.app, status),
                "progress": fmt_progress(state.done, state.total),
                "rate": fmt_float(state.throughput, 2),
                "eta": fmt_duration(state.eta_s) if status == "running" else DASH,
                "failed": styled(self.app, str(state.failed), "error") if state.failed else "0",
                "checkpoint": state.checkpoint or DASH,
            }
            self._put_row(table, self._job_cells, key, values)
        self.query_one("#jobs-empty").display = not app.jobs

    @staticmethod
    def _put_row(table: DataTable, drawn: dict[str, dict[str, object]], key: str, values: dict[str, object]) -> None:
        """Add the row once; afterwards touch only the cells whose text changed."""
        if key not in drawn:
            table.add_row(*values.values(), key=key)
            drawn[key] = dict(values)
            return
        cells = drawn[key]
        for column, value in values.items():
            if cells.get(column) != value:
                table.update_cell(key, column, value, update_width=True)  # columns follow content
                cells[column] = value

    # -- actions -----------------------------------------------------------------------------
    def action_switch_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = "jobs-tab" if tabs.active == "runs-tab" else "runs-tab"
        self.query_one("#jobs" if tabs.active == "jobs-tab" else "#runs", DataTable).focus()

    def _current_run_key(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_toggle_mark(self) -> None:
        if self.query_one("#tabs", TabbedContent).active != "runs-tab":
            return
        key = self._current_run_key()
        if key is None:
            return
        app: KvcapTui = self.app  # type: ignore[assignment]
        app.marked.symmetric_difference_update({key})
        self._update_runs(app)
        table = self.query_one("#runs", DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        from kvcap.tui.screens import CompareScreen

        app: KvcapTui = self.app  # type: ignore[assignment]
        keys = [k for k in self._order if k in app.marked] or [k for k in [self._current_run_key()] if k]
        if not keys:
            self.notify("No runs to compare: mark some with space.", severity="warning")
            return
        self.app.push_screen(CompareScreen([app.runs[k] for k in keys]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from kvcap.tui.screens import JobScreen, RunDetailScreen

        app: KvcapTui = self.app  # type: ignore[assignment]
        key = event.row_key.value
        if event.data_table.id == "runs" and key in app.runs:
            self.app.push_screen(RunDetailScreen(app.runs[key]))
        elif event.data_table.id == "jobs" and key in app.jobs:
            self.app.push_screen(JobScreen(app.jobs[key]))


class KvcapTui(App):
    """Watch `kvcap train` runs and `kvcap caption` jobs."""

    CSS_PATH = "kvcap.tcss"
    TITLE = "kvcap"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
    ]

    def __init__(
        self,
        run_sources: Iterable[str | Path] = (),
        job_sources: Iterable[str | Path] = (),
        *,
        refresh: float = 2.0,
        clock: Clock | None = None,
        alive: PidAlive | None = None,
    ):
        super().__init__()
        self.run_sources = [Path(p) for p in run_sources]
        self.job_sources = [Path(p) for p in job_sources]
        self.refresh_s = refresh
        self.clock: Clock = clock or time.time
        self.pid_alive: PidAlive = alive or pid_alive
        self.runs: dict[str, RunReader] = {}
        self.jobs: dict[str, JobReader] = {}
        self.marked: set[str] = set()
        self.poll_files()

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.sub_title = ", ".join(p.name or str(p) for p in self.run_sources)
        if self.refresh_s > 0:
            self.set_interval(self.refresh_s, self.tick)
        self.theme_changed_signal.subscribe(self, lambda _theme: self._repaint())

    def poll_files(self) -> None:
        """Find new run/job dirs and read what every reader has not read yet."""
        for path in discover(self.run_sources, is_run_dir):
            self.runs.setdefault(str(path), RunReader(path))
        # caption jobs: the --jobs folders, and job folders that sit beside the runs
        for path in discover([*self.job_sources, *self.run_sources], is_job_dir):
            for part in job_parts(path):
                self.jobs.setdefault(f"{path}#{part or ''}", JobReader(path, part))
        for reader in (*self.runs.values(), *self.jobs.values()):
            reader.poll()

    def tick(self) -> None:
        self.poll_files()
        for screen in self.screen_stack:
            update = getattr(screen, "update_view", None)
            if update is not None:
                try:
                    update()
                except NoMatches:  # the screen is being torn down (app exiting)
                    pass

    def _repaint(self) -> None:
        for screen in self.screen_stack:
            repaint = getattr(screen, "repaint", None)
            if repaint is not None:
                repaint()

    def action_refresh_now(self) -> None:
        self.tick()
        self.notify("Refreshed", timeout=1)

    def action_help(self) -> None:
        from kvcap.tui.screens import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"


def create_app(
    run_dirs: Iterable[str | Path] = ("runs",),
    job_dirs: Iterable[str | Path] = (),
    *,
    refresh: float = 2.0,
    clock: Clock | None = None,
    alive: PidAlive | None = None,
) -> KvcapTui:
    """The TUI over run directories (or folders of them) and caption output folders.

    `clock` (epoch seconds) and `alive` (pid -> bool) are injectable for deterministic tests.
    """
    return KvcapTui(run_dirs, job_dirs, refresh=refresh, clock=clock, alive=alive)
