"""kvcap.toml in and out: `load_config` reads a file (and `--set` overrides), `config_to_toml`
writes the resolved config with each field's doc as a comment, `commented_toml` the documented
list of every key with the values commented out."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from kvcap.config.constraints import ConfigError
from kvcap.config.layers import apply_overrides, config_from_dict
from kvcap.config.fields import field_docs, public_fields
from kvcap.config.schema import Config

DEFAULT_CONFIG_NAME = "kvcap.toml"

def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_config_text(path: Path, shown: str, explicit: bool = True) -> str:
    """The file's text, or ConfigError saying what is wrong with it (named `shown`). An empty
    file is an error when named (`--config`); an empty ./kvcap.toml just means the defaults."""
    if not path.exists():
        raise ConfigError(f"{shown}: no such file")
    if path.is_dir():
        raise ConfigError(f"{shown}: is a folder, not a TOML file")
    if not path.is_file():  # /dev/null, a pipe, a device
        raise ConfigError(f"{shown}: not a regular file (a TOML file is needed)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if explicit and not text.strip():
        raise ConfigError(f"{shown}: empty file (no settings; leave out --config for the defaults)")
    return text


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *, required: bool = False) -> Config:
    """Read `path` (default `./kvcap.toml` when it exists) and apply `--set key=value` overrides.

    A missing default file means built-in defaults; a missing explicit file is an error.
    """
    cfg = Config()
    explicit = path is not None
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        path = candidate if candidate.is_file() else None
        if path is None and required:
            raise ConfigError(f"{DEFAULT_CONFIG_NAME}: no such file")
    if path is not None:
        path = Path(path)
        shown = _display_path(path)
        text = _read_config_text(path, shown, explicit)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            m = re.search(r"\(at line (\d+), column (\d+)\)", message)
            reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
            loc = f"{shown}:{m.group(1)}" if m else shown
            raise ConfigError(f"{loc}: TOML syntax error: {reason}") from None
        cfg = config_from_dict(data, source=shown, text=text)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def commented_toml(cfg: Config | None = None) -> str:
    """Every key with its doc, values commented out: a file that documents all and sets nothing,
    so built-in defaults and each checkpoint's own settings hold until a line is uncommented."""
    out = []
    for line in config_to_toml(cfg or Config()).splitlines():
        out.append(f"# {line}" if re.match(r"^[A-Za-z_]\w*\s*=", line) else line)
    return "\n".join(out) + "\n"



def config_to_dict(cfg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in public_fields(type(cfg)):
        value = getattr(cfg, f.name)
        out[f.name] = config_to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def config_to_toml(cfg: Config, comments: bool = True) -> str:
    """The resolved config as TOML text (with each field's doc as a comment)."""
    lines: list[str] = []

    def emit(obj: Any, table: str) -> None:
        docs = field_docs(type(obj))
        scalars = [f for f in public_fields(type(obj)) if not dataclasses.is_dataclass(getattr(obj, f.name))]
        tables = [f for f in public_fields(type(obj)) if dataclasses.is_dataclass(getattr(obj, f.name))]
        if table and scalars:
            lines.append(f"[{table}]")
        for f in scalars:
            if comments and f.name in docs:
                lines.append(f"# {docs[f.name]}")
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
        if table and scalars:
            lines.append("")
        for f in tables:
            if comments and f.name in docs:
                lines.append(f"# {docs[f.name]}")
            emit(getattr(obj, f.name), f"{table}.{f.name}" if table else f.name)

    emit(cfg, "")
    return "\n".join(lines).rstrip() + "\n"
