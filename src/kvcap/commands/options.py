"""Options and helpers shared by several commands (no heavy imports here)."""

from __future__ import annotations

from typing import Any

import click

from kvcap.config import Config, ConfigError, apply_overrides, load_config


class ConfigProblem(click.ClickException):
    """A config error, shown as one line; exit 2 even when a command is run outside `kvcap.cli`."""

    exit_code = 2


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


# config key -> the option that sets it, where the option is not `--<last part of the key>`
FLAG_NAMES: dict[str, str] = {
    "projector.name": "--projector",
    "data.manifest": "--data",
    "caption.output": "--output",
    "caption.formats": "--format",
    "score.siglip": "--siglip",
    "video.backend": "--backend",
}


def flag_name(key: str) -> str:
    """The command-line option that sets config `key` (`score.metrics` -> `--metrics`)."""
    return FLAG_NAMES.get(key, "--" + key.rsplit(".", 1)[-1].replace("_", "-"))


def resolve_config(config_path: str | None, overrides: tuple[str, ...] = (), flags: dict[str, Any] | None = None) -> Config:
    """Load the config, then `--set` overrides, then explicit CLI flags (None = not given).

    A ConfigError becomes a one-line `click.ClickException` (exit 2, see `kvcap.cli`); an
    error in a flag's value names the flag the user typed (`--metrics: ...`), not `--set`.
    """
    try:
        cfg = load_config(config_path, list(overrides))
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    for key, value in (flags or {}).items():
        if value is None:
            continue
        try:
            cfg = apply_overrides(cfg, {key: value})
        except ConfigError as exc:
            text = str(exc)
            if text.startswith("--set: "):
                text = f"{flag_name(key)}: " + text[len("--set: "):]
            raise ConfigProblem(text) from None
    return cfg


def named_on_command_line(overrides: tuple[str, ...], flag_value: Any, key: str, word: str) -> bool:
    """Whether the user typed `word` for config `key`: in its flag's value or in a `--set key=...`.

    kvcap.toml lists every key, so "the user asked for it" is what was typed, not what the
    file holds.
    """
    typed = [str(flag_value)] if flag_value is not None else []
    typed += [o.partition("=")[2] for o in overrides if o.partition("=")[0].strip() == key]
    return any(word in t for t in typed)
