"""Options and helpers shared by several commands (no heavy imports here)."""

from __future__ import annotations

from typing import Any

import click

from kvcap.config import Config, ConfigError, apply_overrides, load_config


def config_options(func):
    """`--config FILE` and repeatable `--set section.key=value`."""
    func = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override any config key, e.g. --set train.stage1.lr=5e-4 (repeatable).",
    )(func)
    func = click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), default=None,
        help="Config file (default: ./kvcap.toml when present).",
    )(func)
    return func


def resolve_config(config_path: str | None, overrides: tuple[str, ...] = (), flags: dict[str, Any] | None = None) -> Config:
    """Load the config, then `--set` overrides, then explicit CLI flags (None = not given).

    A ConfigError becomes a one-line `click.ClickException` (exit 1).
    """
    try:
        cfg = load_config(config_path, list(overrides))
        if flags:
            cfg = apply_overrides(cfg, {k: v for k, v in flags.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return cfg
