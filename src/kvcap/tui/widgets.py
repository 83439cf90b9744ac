"""Small widgets: a metric curve (textual-plotext, or a sparkline where plotext is missing)."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from kvcap.tui.format import fmt_float

try:  # an optional nicety: the sparkline below is the fallback
    from textual_plotext import PlotextPlot
except Exception:  # pragma: no cover - textual-plotext is a dependency, but keep working without
    PlotextPlot = None  # type: ignore[assignment,misc]


class Curve(Vertical):
    """A titled y-over-step curve. `set_points` replaces the data (already downsampled)."""

    def __init__(self, title: str, *, id: str | None = None, use_plotext: bool = True):  # noqa: A002
        super().__init__(id=id, classes="curve")
        self.title = title
        self.use_plotext = use_plotext and PlotextPlot is not None
        self.points: tuple[list[float], list[float]] = ([], [])

    def compose(self) -> ComposeResult:
        if self.use_plotext:
            yield PlotextPlot(classes="plot")
        else:
            yield Static(self.title, classes="curve-title")
            yield Sparkline([], classes="plot")
            yield Static("", classes="curve-range")

    def set_points(self, xs: list[float], ys: list[float], fmt: Callable[[float | None], str] = fmt_float,
                   title: str | None = None) -> None:
        self.points = (xs, ys)
        if title is not None:
            self.title = title
        if self.use_plotext:
            plot = self.query_one(PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(self.title)
            plt.xlabel("step")
            if xs:
                plt.plot(xs, ys, marker="braille")
                lo, hi = min(ys), max(ys)
                if hi > lo:  # our own tick labels: plotext prints 0.0000499 for a learning rate
                    ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
                    plt.yticks(ticks, [fmt(t) for t in ticks])
            plot.refresh()
        else:
            self.query_one(".curve-title", Static).update(self.title)
            self.query_one(Sparkline).data = ys
            last = fmt(ys[-1]) if ys else "–"
            span = f"steps {xs[0]:g}–{xs[-1]:g}" if xs else "no data yet"
            self.query_one(".curve-range", Static).update(f"last {last} · {span}")
