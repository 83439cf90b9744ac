"""Layers: built-in defaults < the checkpoint's own < kvcap.toml (or --config) < --set < flags.

A key's provenance says which layer set it; a lower layer never overwrites a higher one, so the
order in which layers are applied does not matter. Building a Config from plain dicts, with
precise errors, is here too (`config_from_dict`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from kvcap.config.constraints import ConfigError, Where, coerce, show
from kvcap.config.fields import INTERNAL_FIELDS, field_types, public_fields
from kvcap.config.schema import CHECKPOINT_LAYER, SET_LAYER, Config, layer_rank


def setting_type(key: str) -> Any:
    """The annotation of dotted `key` (with its Literal / Annotated constraints)."""
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = field_types(cls)
        if part not in hints or part in INTERNAL_FIELDS:
            raise ConfigError(f"config: {key}: unknown key")
        tp = hints[part]
        if i < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"config: {key}: unknown key")
            cls = tp
    return tp


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, value in data.items():
        if isinstance(value, dict):
            out.extend(_leaf_keys(value, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out



def _build(base: Any, data: dict[str, Any], prefix: str, where: Where) -> Any:
    """A copy of dataclass instance `base` with `data` applied on top (nested tables merge)."""
    cls = type(base)
    hints = field_types(cls)
    known = {f.name for f in public_fields(cls)}
    out = dataclasses.replace(base)
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in known:
            close = [k for k in known if k.startswith(name[:3])]
            hint = f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""
            raise where.error(key, f"unknown key{hint}")
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise where.error(key, f"expected a table [{key}], got {show(value)}")
            setattr(out, name, _build(getattr(base, name), value, f"{key}.", where))
        else:
            setattr(out, name, coerce(value, hints[name], key, where))
    return out


def config_from_dict(data: dict[str, Any], source: str = "<dict>", text: str | None = None, base: Config | None = None,
                     layer: str | None = None) -> Config:
    """Validate `data` (parsed TOML) and return a Config; `base` supplies values not given.

    The keys in `data` are recorded as set by `layer` (default: the file `source`).
    """
    where = Where(source, text)
    cfg = _build(copy.deepcopy(base) if base is not None else Config(), data, "", where)
    cfg.source = source
    cfg.provenance = {**cfg.provenance, **{k: layer or source for k in _leaf_keys(data)}}
    return cfg



def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` -> (key, value); the value is read as TOML, else as a bare string."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected section.key=value")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
        raise ConfigError(f"--set {item}: bad key {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any], layer: str = SET_LAYER) -> Config:
    """Apply `key=value` strings (or a {dotted key: value} dict) on top of `cfg`, as `layer`."""
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    return apply_layer(cfg, dict(items), layer, force=True)


def apply_layer(cfg: Config, values: dict[str, Any], layer: str, *, force: bool = False) -> Config:
    """Set {dotted key: value} as `layer`, except where a higher layer already set the key.

    None values are skipped (a flag not given). `force` also lets the layer override a higher
    one (`--set` given after a flag in code). Errors name the key, as `--set` ones do.
    """
    rank = layer_rank(layer)
    for key, value in values.items():
        if value is None:
            continue
        current = get_value(cfg, key, source="--set")
        if not force and layer_rank(cfg.layer_of(key)) > rank:
            continue
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(current, list) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        source = cfg.source
        cfg = config_from_dict(_nest(key, value), source="--set", base=cfg, layer=layer)
        cfg.source = source
    return cfg


def with_checkpoint(cfg: Config, values: dict[str, Any]) -> Config:
    """The checkpoint's own settings ({dotted key: value}, see `Captioner.checkpoint_settings`)
    layered above the built-in defaults and below everything the user set."""
    return apply_layer(cfg, values, CHECKPOINT_LAYER)


def get_value(cfg: Any, key: str, source: str = "config") -> Any:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in public_fields(type(node))}:
            raise ConfigError(f"{source}: {key}: unknown key")
        node = getattr(node, part)
    return node
