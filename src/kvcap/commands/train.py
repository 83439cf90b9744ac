"""`kvcap train --stage 1|2`: train the projector (stage 1), then projector + LoRA (stage 2)."""

from __future__ import annotations

import click

from kvcap.commands.options import click_type, config_options, resolve_config


@click.command()
@click.option("--stage", type=click.IntRange(1, 2), required=True, help="1 = projector alignment, 2 = projector + LoRA from stage 1's best.")
@click.option("--data", "data", default=None, metavar="MANIFEST", help="Manifest JSONL (overrides data.manifest); train/val from its `split`.")
@click.option("--projector", type=click_type("projector.name"), default=None, help="Projector (overrides projector.name).")
@click.option("--run", "run", default=None, metavar="NAME|DIR", help="Run name under train.runs_dir, or a directory (default: the projector's name).")
@click.option("--resume", is_flag=True, help="Continue the run from its last checkpoint (weights, optimizer, schedule, RNG, data position).")
@click.option("--init", "init", default=None, metavar="CHECKPOINT", help="Stage 2: start from this checkpoint's projector instead of the run's stage 1 best.")
@config_options
def train(stage: int, data: str | None, projector: str | None, run: str | None, resume: bool, init: str | None,
          config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Train the captioner; writes runs/<name>/ (watch it with `kvcap tui` or `tail -f`).

    \b
      kvcap train --stage 1                       projector alignment (reads kvcap.toml)
      kvcap train --stage 2                       projector + LoRA, from stage 1's best
      kvcap train --stage 1 --run x --resume      continue a killed run exactly
      accelerate launch --multi_gpu --num_processes 4 -m kvcap.cli train --stage 1    DDP
    """
    from pathlib import Path

    from kvcap.trainer.rundir import RunDir, require_state, resolve_run_path

    flags = {"data.manifest": data, "projector.name": projector}
    cfg = resolve_config(config_path, overrides, flags)
    run_path = resolve_run_path(run, cfg.train.runs_dir, cfg.projector.name)
    if resume and (run_path / "config.toml").is_file():
        # Resume exactly what ran: its own resolved config, plus this command's --set/flags.
        if config_path:
            click.echo(f"note: --resume uses {run_path / 'config.toml'}; --config {config_path} is ignored", err=True)
        cfg = resolve_config(str(run_path / "config.toml"), overrides, flags)
    if init is not None and stage != 2:
        raise click.UsageError("--init is for --stage 2 (stage 1 trains a fresh projector)")
    from kvcap.fsutil import check_writable_dir
    from kvcap.model.hub import require_loadable

    from kvcap.data.manifest import read_splits

    if resume:
        require_state(RunDir(run_path, writer=False))  # "nothing to resume" before anything else is read
    else:  # before the run folder is made (a resumed run's exists; the loaders check too)
        require_loadable(cfg.model.vision, "model.vision")  # no hub: one line now, not after retries
        require_loadable(cfg.model.llm, "model.llm")
    splits = read_splits(cfg.data.manifest)  # a missing or broken manifest fails in a second, no folder left
    # DDP ranks check at once, so a fresh run's folder is kept; --resume needs the folder to be
    # there already, and one that is not must not be left behind empty ("nothing to resume").
    check_writable_dir(run_path, "--run" if run is not None else "train.runs_dir", keep=not resume)

    from kvcap.trainer.loop import train as run_training

    try:  # a user-facing error (PromptError, DimsError, ...) is one line from kvcap.cli
        summary = run_training(cfg, splits, stage=stage, run_path=Path(run_path), resume=resume, init=init)
    except KeyboardInterrupt:
        click.echo(f"interrupted: resume with `kvcap train --stage {stage} --run {run_path} --resume`", err=True)
        raise SystemExit(130) from None
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch`, rank 0 speaks for all
        return
    best = summary.get("best") or {}
    value = best.get("value")
    shown = f"{best.get('metric')} {value:.4f}" if isinstance(value, float) else str(best.get("metric"))
    click.echo(f"{run_path}: stage {stage} finished, {summary['steps']} steps, best {shown} -> {run_path / 'best'}")
