"""Options and helpers shared by several commands (no heavy imports here).

Settings come in layers (kvcap.config): built-in defaults < the checkpoint's own < the config
file < `--set` < command flags. A flag that overrides one config key is one line:

    @setting_option("--max-new-tokens", "generation.max_new_tokens")

Its Click type (choice, int/float range) and help come from the field's declaration in
kvcap.config (schema.py); `resolve_config` picks the value up as the top layer, and `cfg.is_explicit(key)` /
`cfg.explicit_keys()` tell later code the user set it. Flags declared the older way (a
parameter passed through `resolve_config(..., flags={key: value})`) land in the same layer.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import click

from kvcap.config import FLAG_LAYER, Config, ConfigError, Range, apply_overrides, field_docs, load_config, setting_type
from kvcap.config.constraints import OneOf, choices_of

_FLAGS_META = "kvcap.setting_flags"


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


class NumberOrWord(click.ParamType):
    """A number in `number`'s range, or one of `words` (`--batch-size auto`, `--segment scenes`)."""

    def __init__(self, number: click.ParamType, words: tuple[str, ...]):
        self.number, self.words = number, words
        self.name = f"{number.name}|{'|'.join(words)}"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in self.words:
                return text
            try:
                float(text)
            except ValueError:
                self.fail(f"{value!r} is neither a number nor {' / '.join(self.words)}", param, ctx)
        try:
            return self.number.convert(value, param, ctx)
        except click.BadParameter as exc:
            self.fail(f"{exc.message.rstrip('.')}; or one of: {', '.join(self.words)}", param, ctx)


class RegistryChoice(click.Choice):
    """A click.Choice whose choices are read from a registry when used (kvcap.records.formats /
    .metrics), so a format or metric registered after the command was declared is offered too."""

    def __init__(self, one_of: OneOf):
        self._one_of = one_of
        super().__init__(list(one_of.choices()))

    @property
    def choices(self) -> list[str]:  # type: ignore[override]
        return list(self._one_of.choices())

    @choices.setter
    def choices(self, _value: Any) -> None:  # click.Choice.__init__ assigns it
        pass


class LiveHelpOption(click.Option):
    """An option whose help text is built when `--help` is shown: `help_from()` lists the
    registered formats or metrics of that moment."""

    def __init__(self, *args: Any, help_from: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._help_from = help_from

    def get_help_record(self, ctx: click.Context) -> Any:
        self.help = self._help_from()
        return super().get_help_record(ctx)


def format_help() -> str:
    """`-f/--format`'s help: the registered formats (kvcap.records.formats)."""
    from kvcap.records.formats import format_names

    return (f"Comma list of {', '.join(format_names())}, or `all` "
            "(captions.jsonl is always written: resume reads it).")


def metrics_help() -> str:
    """`--metrics`' help: the registered metrics (kvcap.records.metrics)."""
    from kvcap.records.metrics import metric_names

    return f"Comma-separated subset of {','.join(metric_names())} (default: config score.metrics)."


def click_type(key: str) -> Any:
    """The Click parameter type for config key `key`, built from its declared constraints."""
    return _click_type_of(setting_type(key))


def _click_type_of(tp: Any) -> Any:
    if get_origin(tp) is Union or get_origin(tp) is types.UnionType:  # a number or a word
        options = get_args(tp)
        words = tuple(w for option in options if get_origin(option) is Literal for w in get_args(option))
        number = next(option for option in options if get_origin(option) is not Literal)
        return NumberOrWord(_click_type_of(number), words)
    bounds: Range | None = None
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        bounds = next((m for m in meta if isinstance(m, Range)), None)
        one_of = next((m for m in meta if isinstance(m, OneOf)), None)
        if one_of is not None:
            return RegistryChoice(one_of)
    if get_origin(tp) is Literal:
        return click.Choice(list(get_args(tp)))
    if tp in (int, float):
        if bounds is None:
            return tp
        rng = click.IntRange if tp is int else click.FloatRange
        lo = bounds.ge if bounds.ge is not None else bounds.gt
        extra = {} if tp is int else {"min_open": bounds.gt is not None}
        return rng(min=lo, max=bounds.le, **extra)
    if tp is bool:
        return click.BOOL
    return click.STRING


def choices(key: str) -> list[str]:
    """The declared choices of a config key (a Literal, a registry's OneOf, or a list of either)."""
    tp = setting_type(key)
    if get_origin(tp) is list:
        tp = get_args(tp)[0]
    return list(choices_of(tp) or ())


def setting_option(flag: str, key: str, *, help: str | None = None, implies: dict[str, Any] | None = None, **kwargs: Any):
    """A command flag that sets config key `key` as the top layer (see the module docstring).

    The value does not reach the command function: `resolve_config` applies it. `implies` sets
    other keys too when the flag is given, e.g. `--temperature` with `{"generation.do_sample": True}`.
    """
    parent, _, leaf = key.rpartition(".")
    doc = help or _field_doc(parent, leaf)

    def remember(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            given = ctx.meta.setdefault(_FLAGS_META, {})
            given.update(implies or {})
            given[key] = value
        return value

    return click.option(flag, type=click_type(key), default=None, expose_value=False, callback=remember,
                        help=doc, **kwargs)


def _field_doc(parent: str, leaf: str) -> str:
    node: Any = Config()
    for part in parent.split(".") if parent else []:
        node = getattr(node, part)
    doc = field_docs(type(node)).get(leaf, "")
    key = f"{parent}.{leaf}" if parent else leaf
    return f"{doc} (sets {key})" if doc else f"Sets {key}."


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

    Flags are `flags` plus every `setting_option` given on the current command line. A
    ConfigError becomes a one-line `click.ClickException` (exit 2, see `kvcap.cli`); an error in
    a flag's value names the flag the user typed (`--metrics: ...`), not `--set`.
    """
    ctx = click.get_current_context(silent=True)
    given = dict(ctx.meta.get(_FLAGS_META, {})) if ctx is not None else {}
    given.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        cfg = load_config(config_path, list(overrides))
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    for key, value in given.items():
        try:
            cfg = apply_overrides(cfg, {key: value}, layer=FLAG_LAYER)
        except ConfigError as exc:
            text = str(exc)
            if text.startswith("--set: "):
                text = f"{flag_name(key)}: " + text[len("--set: "):]
            raise ConfigProblem(text) from None
    return cfg
