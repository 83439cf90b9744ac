"""`kvcap config show|validate`."""

from __future__ import annotations

import sys

import click

from kvcap.commands.options import config_options, resolve_config


@click.group()
def config() -> None:
    """Show or check the configuration (kvcap.toml)."""


@config.command()
@config_options
@click.option("--no-comments", is_flag=True, help="Values only.")
def show(config_path: str | None, overrides: tuple[str, ...], no_comments: bool) -> None:
    """Print the resolved config (file + --set overrides) as TOML."""
    from kvcap.config import config_to_toml

    cfg = resolve_config(config_path, overrides)
    click.echo(f"# resolved from {cfg.source}")
    click.echo(config_to_toml(cfg, comments=not no_comments), nl=False)


@config.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def validate(file: str | None) -> None:
    """Check FILE (default ./kvcap.toml): exit 1 with the file, line and key at fault."""
    from kvcap.config import ConfigError, load_config

    try:
        cfg = load_config(file, required=True)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{cfg.source}: ok")
