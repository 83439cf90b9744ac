"""Coloured cell text from the current theme's variables (never hard-coded colours).

DataTable cells are Rich Text, which cannot use `$variables` itself, so the colour is looked up
in the app's theme when the cell is drawn; the screens redraw their cells on a theme change.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App

from kvcap.records import passes_target

STATUS_ROLE = {
    "running": "success",
    "finished": "primary",
    "failed": "error",
    "stale": "warning",
    "interrupted": "warning",
    "gone": "error",
}

# Theme variables designed to be read as text on the theme's background.
_TEXT_VARIABLE = {
    "success": "text-success",
    "error": "text-error",
    "warning": "text-warning",
    "primary": "text-primary",
    "accent": "text-accent",
}


def theme_colour(app: App, role: str) -> str | None:
    variables = app.get_css_variables()
    colour = variables.get(_TEXT_VARIABLE.get(role, role)) or variables.get(role)
    if not colour or " " in colour or colour.startswith("auto"):
        return None
    return colour


def styled(app: App, text: str, role: str, bold: bool = False) -> Text:
    colour = theme_colour(app, role)
    style = " ".join(s for s in ("bold" if bold else "", colour or "") if s)
    return Text(text, style=style)


def status_text(app: App, status: str) -> Text:
    role = STATUS_ROLE.get(status)
    return styled(app, status, role, bold=status == "running") if role else Text(status)


def pass_fail(app: App, value: float | None, target: float | None, digits: int = 3) -> Text:
    """`0.421 ✓` in the success colour, `0.312 ✗` in the error colour, – when unmeasured; a
    metric without a target shows its value alone."""
    if value is None:
        return Text("–")
    if target is None:
        return Text(f"{value:.{digits}f}")
    ok = passes_target(value, target)
    return styled(app, f"{value:.{digits}f} {'✓' if ok else '✗'}", "success" if ok else "error")
