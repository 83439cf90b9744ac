"""`kvcap tui`: watch training runs and caption jobs live (textual is imported when run)."""

from __future__ import annotations

import click

from kvcap.commands.options import config_options, resolve_config


@click.command()
@click.argument("runs_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--jobs", "job_dirs", multiple=True, type=click.Path(file_okay=False), metavar="OUT_DIR",
              help="A `kvcap caption` output folder to follow (repeatable).")
@click.option("--refresh", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between reads of the run files.")
@config_options
def tui(runs_dirs: tuple[str, ...], job_dirs: tuple[str, ...], refresh: float, config_path: str | None,
        overrides: tuple[str, ...]) -> None:
    """Watch runs (RUNS_DIR: a runs folder or run directories; default train.runs_dir) and caption jobs.

    \b
    Keys: arrows move, enter opens, escape goes back, tab switches runs/jobs,
    space marks runs and c compares them, r refreshes, ? helps, q quits.
    """
    if not runs_dirs:
        runs_dirs = (resolve_config(config_path, overrides).train.runs_dir,)
    from kvcap.tui.app import create_app

    create_app(runs_dirs, job_dirs, refresh=refresh).run()
