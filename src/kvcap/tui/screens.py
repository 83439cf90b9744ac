"""The TUI's secondary screens: run detail, caption job, compare, help."""

from __future__ import annotations

from itertools import groupby

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static, TabbedContent, TabPane

from kvcap.tui.format import DASH, fmt_count, fmt_duration, fmt_float, fmt_lr, fmt_progress, generation_summary
from kvcap.records import Targets, labels, metric_names
from kvcap.tui.jobfiles import JobReader
from kvcap.tui.runfiles import RunReader, compare_row
from kvcap.tui.style import pass_fail, status_text, styled
from kvcap.tui.widgets import Curve

SAMPLES_SHOWN = 30
"""Sample captions shown for the latest eval (the newest ones)."""


def _epoch(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}".rstrip("0").rstrip(".")


class RunDetailScreen(Screen):
    """One run: curves, per-epoch evals with targets, collapse alarm, samples, config."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("left", "step_tab(-1)", "Tab ←", show=False, priority=True),
        Binding("right", "step_tab(1)", "Tab →", show=False, priority=True),
    ]
    TAB_ORDER = ("curves-tab", "eval-tab", "samples-tab", "config-tab")

    def action_step_tab(self, step: int) -> None:
        """←/→: the previous/next of Curves, Eval, Samples, Config (wrapping around)."""
        tabs = self.query_one("#detail-tabs", TabbedContent)
        order = [t for t in self.TAB_ORDER if tabs.query(f"#{t}")]
        if tabs.active in order:
            tabs.active = order[(order.index(tabs.active) + step) % len(order)]

    def __init__(self, reader: RunReader):
        super().__init__()
        self.reader = reader
        self._drawn_version = -1
        self._drawn_train = -1
        self._drawn_evals = 0
        self._drawn_samples = -1
        self._drawn_config: str | None = None
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="run-summary")
        yield Static(id="collapse-alarm")
        with TabbedContent(id="detail-tabs"):
            with TabPane("Curves", id="curves-tab"):
                with Horizontal(id="curves"):
                    yield Curve("loss", id="loss-curve")
                    yield Curve("learning rate", id="lr-curve")
            with TabPane("Eval", id="eval-tab"):
                yield Static(f"Targets: {self.reader.targets().describe()}", id="targets", classes="hint")
                yield DataTable(id="evals", cursor_type="row", zebra_stripes=True)
            with TabPane("Samples", id="samples-tab"):
                yield VerticalScroll(id="samples")
            with TabPane("Config", id="config-tab"):
                with VerticalScroll(id="config-scroll"):
                    yield Static(id="config", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.reader.name
        table = self.query_one("#evals", DataTable)
        for key, label in (("stage", "Stg"), ("epoch", "Epoch"), ("step", "Step"), ("loss", "Val loss"),
                           *labels().items(), ("ref", "Ref div."), ("collapse", "Collapse")):
            table.add_column(label, key=key)
        self._ready = True
        self.update_view()

    def repaint(self) -> None:
        self._drawn_version = -1
        self._drawn_evals = 0
        self.query_one("#evals", DataTable).clear()
        self.update_view()

    # -- live update -------------------------------------------------------------------------
    def update_view(self) -> None:
        if not self._ready:  # a timer tick can come before on_mount
            return
        reader = self.reader
        if reader.version == self._drawn_version and not reader.gone:
            self._update_summary()  # the status can turn stale without any file changing
            return
        self._drawn_version = reader.version
        self._update_summary()
        self._update_alarm()
        if len(reader.train) != self._drawn_train:
            self._drawn_train = len(reader.train)
            stage = reader.train[-1].stage if reader.train else ""
            suffix = f" (stage {stage})" if stage != "" else ""
            self.query_one("#loss-curve", Curve).set_points(*reader.curve("loss"), title=f"loss{suffix}")
            self.query_one("#lr-curve", Curve).set_points(*reader.curve("lr"), fmt=fmt_lr,
                                                         title=f"learning rate{suffix}")
        self._update_evals()
        if reader.samples_seen != self._drawn_samples:
            self._drawn_samples = reader.samples_seen
            self._update_samples()
        if reader.config_text != self._drawn_config:
            self._drawn_config = reader.config_text
            self.query_one("#config", Static).update(reader.config_text or "config.toml: not written yet")

    def _update_summary(self) -> None:
        app = self.app
        reader = self.reader
        status = reader.status(app.clock(), app.pid_alive)  # type: ignore[attr-defined]
        state = reader.state
        line = Text.assemble(
            (reader.name, "bold"), "  ", status_text(app, status),
            f"  {state.projector or DASH} · stage {state.stage or DASH}\n",
            f"{fmt_progress(state.step, state.total_steps, width=10)} · epoch {_epoch(state.epoch)}/{_epoch(state.epochs)}",
        )
        extra = [f"ETA {fmt_duration(reader.eta_s())}" if status == "running" else "",
                 f"loss {fmt_float(reader.last_loss())}", f"best METEOR {fmt_float(reader.best_meteor())}"]
        line.append("".join(f" · {e}" for e in extra if e))
        if reader.gone:
            line.append("\n")
            line.append_text(styled(app, f"{reader.path}: run directory deleted; showing what was read.", "error"))
        elif status == "failed" and state.error:
            line.append("\n")
            line.append_text(styled(app, f"error: {state.error}", "error"))
        elif status == "stale":
            line.append("\n")
            line.append_text(styled(app, "stale: the trainer's process is gone or stopped updating state.json",
                                    "warning"))
        self.query_one("#run-summary", Static).update(line)

    def _update_alarm(self) -> None:
        alarm = self.query_one("#collapse-alarm", Static)
        collapsed = [e for e in self.reader.evals if e.collapse]
        alarm.display = bool(collapsed)
        if collapsed:
            last = collapsed[-1]
            reasons = "; ".join(last.collapse_reasons) or "low caption diversity"
            latest = "" if self.reader.collapsed() else " (earlier eval; the latest one recovered)"
            alarm.update(f"⚠ MODE COLLAPSE at epoch {_epoch(last.epoch)}, step {last.step}{latest}: {reasons}")

    def _update_evals(self) -> None:
        table = self.query_one("#evals", DataTable)
        evals = self.reader.evals
        if len(evals) < self._drawn_evals:  # metrics.jsonl was rewritten
            table.clear()
            self._drawn_evals = 0
        app = self.app
        targets = self.reader.targets()
        for row in evals[self._drawn_evals:]:
            table.add_row(
                str(row.stage) or DASH, _epoch(row.epoch), str(row.step), fmt_float(row.loss),
                *(pass_fail(app, row.metric(m), targets.get(m)) for m in metric_names()),
                fmt_float(row.ref_diversity),
                styled(app, "⚠ yes", "error", bold=True) if row.collapse else "no",
            )
        self._drawn_evals = len(evals)

    def _update_samples(self) -> None:
        box = self.query_one("#samples", VerticalScroll)
        box.remove_children()
        samples = list(self.reader.samples)
        if not samples:
            box.mount(Static("No sample captions yet (written at each eval).", classes="hint"))
            return
        # the latest eval's samples: the last run of equal (stage, step)
        groups = [list(g) for _, g in groupby(samples, key=lambda s: (s.stage, s.step))]
        latest = groups[-1][-SAMPLES_SHOWN:]
        head = latest[0]
        widgets = [Static(f"Eval at stage {head.stage or DASH}, epoch {_epoch(head.epoch)}, step {head.step}: "
                          f"{len(groups[-1])} samples (prediction | reference)", classes="hint")]
        for item in latest:
            widgets.append(Static(f"{item.id}  {item.video}", classes="sample-title", markup=False))
            widgets.append(Horizontal(
                Static(item.prediction or DASH, classes="prediction", markup=False),
                Static(item.first_reference or DASH, classes="reference", markup=False),
                classes="sample",
            ))
        box.mount_all(widgets)


class JobScreen(Screen):
    """A caption job: progress, throughput, ETA, failures, the latest captions."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    LATEST_SHOWN = 20

    def __init__(self, reader: JobReader):
        super().__init__()
        self.reader = reader
        self._drawn_version = -1
        self._drawn_failures: tuple | None = None
        self._drawn_latest: tuple | None = None
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="job-summary")
        yield ProgressBar(id="job-progress", show_eta=False)
        with Vertical(id="job-failures-box"):
            yield DataTable(id="job-failures", cursor_type="row", zebra_stripes=True)
        yield VerticalScroll(id="job-latest")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.reader.name
        table = self.query_one("#job-failures", DataTable)
        table.add_column("Video", key="video")
        table.add_column("Reason", key="reason")
        self.query_one("#job-latest").border_title = "Latest captions"
        self._ready = True
        self.update_view()

    def repaint(self) -> None:
        self._drawn_version = -1
        self._drawn_failures = self._drawn_latest = None
        self.update_view()

    def update_view(self) -> None:
        if not self._ready:  # a timer tick can come before on_mount
            return
        reader = self.reader
        app = self.app
        status = reader.status(app.clock(), app.pid_alive)  # type: ignore[attr-defined]
        state = reader.state
        line = Text.assemble(
            (reader.name, "bold"), "  ", status_text(app, status),
            f"  checkpoint {state.checkpoint or DASH}\n",
            f"{state.done}/{state.total} done · ok {state.ok} · ", styled(app, f"failed {state.failed}",
                                                                       "error" if state.failed else "success"),
            f" · skipped {state.skipped} · {fmt_float(state.throughput, 2)} videos/s",
            f" · ETA {fmt_duration(state.eta_s) if status == 'running' else DASH}",
        )
        if state.generation:
            line.append(f"\n{generation_summary(state.generation)}")
        if reader.gone:
            line.append("\n")
            line.append_text(styled(app, f"{reader.path}: output folder deleted.", "error"))
        elif state.error:
            line.append("\n")
            line.append_text(styled(app, f"error: {state.error}", "error"))
        self.query_one("#job-summary", Static).update(line)
        if reader.version == self._drawn_version:
            return
        self._drawn_version = reader.version
        self.query_one("#job-progress", ProgressBar).update(total=max(state.total, 1), progress=state.done)
        # rebuild the lists only when their content changed (a running job changes them often)
        failures_sig = tuple((v, r.error) for v, r in reader.failures.items())
        if failures_sig != self._drawn_failures:
            self._drawn_failures = failures_sig
            failures = self.query_one("#job-failures", DataTable)
            self.query_one("#job-failures-box").border_title = f"Failures ({len(failures_sig)})"
            failures.clear()
            for video, error in failures_sig:
                failures.add_row(video, error or DASH, key=video)
        latest = list(reader.latest)[-self.LATEST_SHOWN:][::-1]
        latest_sig = tuple(id(item) for item in latest)
        if latest_sig == self._drawn_latest:
            return
        self._drawn_latest = latest_sig
        box = self.query_one("#job-latest", VerticalScroll)
        with self.app.batch_update():
            box.remove_children()
            if not latest:
                box.mount(Static("No captions yet.", classes="hint"))
                return
            widgets = []
            for item in latest:
                widgets.append(Static(f"{item.video}  ({fmt_float(item.elapsed_s, 1)} s)", classes="sample-title",
                                      markup=False))
                widgets.append(Static(item.caption or DASH, classes="caption", markup=False))
            box.mount_all(widgets)


class CompareScreen(Screen):
    """The `kvcap compare` table over the marked runs."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, readers: list[RunReader]):
        super().__init__()
        self.readers = readers
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Targets: {Targets().describe()} unless a run's config sets its own · "
                     "– = not in summary.json yet", classes="hint")
        yield DataTable(id="compare", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare"
        table = self.query_one("#compare", DataTable)
        for key, label in (("name", "Run"), ("projector", "Projector"), ("params", "Params"),
                           ("tokens", "Vis. tokens"), *labels().items(), ("time", "Train time"),
                           ("collapse", "Collapse")):
            table.add_column(label, key=key)
        self._ready = True
        self.update_view()

    def repaint(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        if not self._ready:
            return
        table = self.query_one("#compare", DataTable)
        table.clear()
        app = self.app
        for reader in self.readers:
            row = compare_row(reader)
            table.add_row(
                row.name, row.projector or DASH, fmt_count(row.params), fmt_count(row.visual_tokens),
                *(pass_fail(app, row.best.get(m), row.targets.get(m)) for m in metric_names()),
                fmt_duration(row.train_time_s),
                styled(app, "⚠ yes", "error", bold=True) if row.collapse else "no",
            )


HELP_TEXT = """\
[b]kvcap tui[/b] — keys

  [b]↑ ↓[/b]        move            [b]enter[/b]   open run / job
  [b]← →[/b]        in a run: Curves / Eval / Samples / Config tabs
  [b]tab[/b]        runs ⇄ jobs     [b]escape[/b]  back
  [b]space[/b]      mark a run      [b]c[/b]       compare marked runs
  [b]r[/b]          refresh now     [b]t[/b]       light/dark theme
  [b]?[/b]          this help       [b]q[/b]       quit

Status [b]stale[/b]: state.json says running, but the process is gone
or has not updated it for 10 minutes. The mouse works too."""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP_TEXT)
