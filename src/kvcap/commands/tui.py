"""`kvcap tui`: watch training runs and caption jobs live (textual is imported when run)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kvcap.commands.options import config_options, resolve_config


def spread_values(args: list[str], option: str) -> list[str]:
    """`--jobs A B C` -> `--jobs A --jobs B --jobs C`: every word after `option` up to the next
    option (or `--`) is one more value of it. Click options take a fixed number of values, so
    without this B and C would silently become RUNS_DIR arguments."""
    out: list[str] = []
    taking = False
    for arg in args:
        if arg == option:
            taking = True
            continue
        if arg.startswith("-"):
            taking = False
        elif taking:
            out += [option, arg]
            continue
        out.append(arg)
    return out


class _JobsTakeSeveral(click.Command):
    """`kvcap tui`'s command: `--jobs` takes every folder after it (see :func:`spread_values`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_values(args, "--jobs"))


@click.command(cls=_JobsTakeSeveral)
@click.argument("runs_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--jobs", "job_dirs", multiple=True, type=click.Path(file_okay=False), metavar="OUT_DIR...",
              help="`kvcap caption` output folders to follow: every folder after --jobs up to the next option "
                   "(put RUNS_DIR before it). Job folders (with a job.json) under RUNS_DIR are found anyway.")
@click.option("--refresh", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between reads of the run files.")
@click.option("--wait", is_flag=True, help="Start even when a runs folder does not exist yet, and watch for it.")
@config_options
def tui(runs_dirs: tuple[str, ...], job_dirs: tuple[str, ...], refresh: float, wait: bool, config_path: str | None,
        overrides: tuple[str, ...]) -> None:
    """Watch runs (RUNS_DIR: a runs folder or run directories; default train.runs_dir) and caption jobs.

    \b
    Keys: arrows move, enter opens, escape goes back, tab switches runs/jobs,
    space marks runs and c compares them, r refreshes, ? helps, q quits.
    """
    if not runs_dirs:
        runs_dirs = (resolve_config(config_path, overrides).train.runs_dir,)
    if not wait:
        for path, what in [*((p, "runs folder") for p in runs_dirs), *((p, "--jobs folder") for p in job_dirs)]:
            if not Path(path).is_dir():
                raise click.ClickException(f"{what} {path}: no such folder (start `kvcap train` first, "
                                           "or pass --wait to watch for it)")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.ClickException("kvcap tui needs a terminal (stdin and stdout are not one); "
                                   "follow a run without it: `tail -f RUN/metrics.jsonl`, `kvcap compare RUN`")
    from kvcap.tui.app import create_app

    create_app(runs_dirs, job_dirs, refresh=refresh).run()
