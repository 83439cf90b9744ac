"""`kvcap compare RUN...`: the projector comparison table from run directories."""

from __future__ import annotations

import json

import click

from kvcap.commands.options import config_options, resolve_config


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
@config_options
def compare(runs: tuple[str, ...], as_json: bool, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Compare runs: projector, params, visual tokens, best METEOR/SigLIP2/Diversity, time, collapse.

    RUN is a run directory or a run name under train.runs_dir.
    """
    from kvcap.trainer.compare import compare_runs, render_compare
    from kvcap.trainer.rundir import resolve_run_path

    cfg = resolve_config(config_path, overrides)
    paths = [resolve_run_path(r, cfg.train.runs_dir, r) for r in runs]
    rows = compare_runs(paths)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from kvcap.console import table_console
    from kvcap.records import Targets

    table_console().print(render_compare(rows, Targets.from_score_config(cfg.score).to_dict()))
