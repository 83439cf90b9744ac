"""Constraints, declared once on the fields of the schema (kvcap.config.schema): `Literal[...]`
for choices, `Annotated[int, Range(..)]` for numbers; `coerce` checks a value against them and
`Where` words the error as `file:line: key: reason`. The Click options (`commands/options.py`)
read the same annotations.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Union, get_args, get_origin

from kvcap.errors import KvcapError
from kvcap.records.formats import format_names
from kvcap.records.metrics import metric_names

class ConfigError(KvcapError, ValueError):
    """A one-line, user-facing configuration error."""



@dataclass(frozen=True)
class Range:
    """The interval a number must lie in: `ge`/`gt` the lower bound (inclusive/exclusive), `le` the upper."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        """Why `value` is out of range, or None when it fits."""
        if self.ge is not None and value < self.ge:
            return f"must be >= {self.ge:g}, got {value:g}"
        if self.gt is not None and value <= self.gt:
            return f"must be > {self.gt:g}, got {value:g}"
        if self.le is not None and value > self.le:
            return f"must be <= {self.le:g}, got {value:g}"
        return None


@dataclass(frozen=True)
class OneOf:
    """Choices read from a registry each time they are checked, so a format or metric that is
    registered later (kvcap.records.formats / .metrics) is accepted everywhere at once."""

    names: Callable[[], tuple[str, ...]]

    def choices(self) -> tuple[str, ...]:
        return tuple(self.names())


def choices_of(tp: Any) -> tuple[str, ...] | None:
    """The words a `Literal[...]` or `Annotated[str, OneOf(..)]` annotation allows, else None."""
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) is Annotated:
        one_of = next((m for m in get_args(tp)[1:] if isinstance(m, OneOf)), None)
        return one_of.choices() if one_of else None
    return None


def _best_metric_names() -> tuple[str, ...]:
    return (*metric_names(), "loss")


# Projector names users write; the torch-side registry (kvcap.model.projectors.PROJECTORS) is
# tested to hold exactly these.
ProjectorName = Literal["linear", "mlp2x_gelu", "perceiver", "cabstractor", "mixer"]
PROJECTOR_NAMES: tuple[str, ...] = get_args(ProjectorName)
# LLM weights; captioning adds the sentinel USE_CHECKPOINT = "whatever the checkpoint was trained with".
Quantization = Literal["none", "8bit", "4bit"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
USE_CHECKPOINT = "checkpoint"
AUTO = "auto"
CaptionQuantization = Literal[(AUTO, USE_CHECKPOINT, *QUANTIZATIONS)]
CaptionFormat = Annotated[str, OneOf(format_names)]  # the table in kvcap.records.formats
Metric = Annotated[str, OneOf(metric_names)]  # the table in kvcap.records.metrics
BestMetric = Annotated[str, OneOf(_best_metric_names)]  # a metric, or the eval loss
Device = Literal["auto", "cpu", "cuda"]
VisionCls = Literal["drop", "keep"]
CLS_CHOICES: tuple[str, ...] = get_args(VisionCls)
# Sizes of things: at least one.
Positive = Annotated[int, Range(ge=1)]
NonNegative = Annotated[int, Range(ge=0)]
Workers = Annotated[int, Range(ge=0, le=64)]
Frames = Annotated[int, Range(ge=1, le=256)]
Fraction = Annotated[float, Range(ge=0, le=1)]


def quantization_override(value: str | None) -> str | None:
    """`caption.quantization` -> what `Captioner.from_checkpoint` takes (None = as trained)."""
    return None if value in (None, USE_CHECKPOINT) else value



def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        return _type_name(get_args(tp)[0])
    if origin is Literal:
        return "a string"
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}s"
    if get_args(tp) and origin is not list:  # a union such as int | str
        return " or ".join(_type_name(t) for t in get_args(tp))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str, where: "Where") -> Any:
    """Check `value` against the annotation `tp` (its Literal choices and Range too); ints are
    accepted where floats are expected."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _coerce_constrained(value, tp, key, where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise where.error(key, f"must be one of {', '.join(choices)}, got {show(value)}")
        return value
    if origin is Union or origin is types.UnionType:  # a number or a word, e.g. caption.segment
        return _coerce_number_or_word(value, tp, key, where)
    if origin is list:
        return _coerce_list(value, tp, key, where)
    if get_args(tp):  # int | str ("auto"): the first member that takes the value
        for member in get_args(tp):
            try:
                return coerce(value, member, key, where)
            except ConfigError:
                continue
        raise where.error(key, f"expected {_type_name(tp)}, got {show(value)}")
    return _coerce_plain(value, tp, key, where)


def _coerce_constrained(value: Any, tp: Any, key: str, where: "Where") -> Any:
    """`Annotated[base, Range(...) | OneOf(...)]`: the base type first, then each constraint."""
    base, *meta = get_args(tp)
    value = coerce(value, base, key, where)
    for constraint in meta:
        if isinstance(constraint, Range) and (problem := constraint.problem(value)):
            raise where.error(key, problem)
        if isinstance(constraint, OneOf) and value not in (choices := constraint.choices()):
            raise where.error(key, f"must be one of {', '.join(choices)}, got {show(value)}")
    return value


def _coerce_number_or_word(value: Any, tp: Any, key: str, where: "Where") -> Any:
    """`float | Literal["scenes", ...]`: one of the words, or a number checked as the number type."""
    options = get_args(tp)
    words = tuple(w for option in options if get_origin(option) is Literal for w in get_args(option))
    if isinstance(value, str):
        if value not in words:
            raise where.error(key, f"expected a number or {' / '.join(words)}, got {show(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(key, f"expected a number or a word, got {show(value)}")
    number = next(option for option in options if get_origin(option) is not Literal)
    return coerce(value, number, key, where)


def _coerce_list(value: Any, tp: Any, key: str, where: "Where") -> list:
    """`list[item]`: a list whose items are each among the item type's choices (when it has any)."""
    (item_tp,) = get_args(tp)
    if not isinstance(value, list):
        raise where.error(key, f"expected {_type_name(tp)}, got {show(value)}")
    if (allowed := choices_of(item_tp)) is not None:
        for item in value:
            if item not in allowed:
                raise where.error(key, f"unknown item {show(item)} (valid: {', '.join(allowed)})")
    return [coerce(v, item_tp, key, where) for v in value]


def _coerce_plain(value: Any, tp: Any, key: str, where: "Where") -> Any:
    """bool, int, float (an int is taken and made a float) or str; a bool is never a number."""
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(key, f"expected true/false, got {show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(key, f"expected an integer, got {show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(key, f"expected a number, got {show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(key, f"expected a string, got {show(value)}")
        return value
    raise where.error(key, f"unsupported type {tp!r}")  # pragma: no cover - schema bug


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Where:
    """Formats errors as `file:line: key: reason`, finding the key's line in the TOML text."""

    def __init__(self, source: str, text: str | None):
        self.source = source
        self.lines = text.splitlines() if text else []

    def line_of(self, key: str) -> int | None:
        parts = key.split(".")
        table, leaf = parts[:-1], parts[-1]
        current: list[str] = []
        leaf_re = re.compile(rf'^\s*"?{re.escape(leaf)}"?\s*=')
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
            if header:
                current = [p.strip().strip('"') for p in header.group(1).split(".")]
                if current == parts:  # the key names a table
                    return number
                continue
            if leaf_re.match(line):
                # `a.b = 1` inside [x] also counts when the dotted prefix matches
                if current == table:
                    return number
            dotted = re.match(r"^\s*([\w.\"]+)\s*=", line)
            if dotted and "." in dotted.group(1):
                full = current + [p.strip('"') for p in dotted.group(1).split(".")]
                if full == parts:
                    return number
        return None

    def error(self, key: str, reason: str) -> ConfigError:
        line = self.line_of(key)
        loc = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{loc}: {key}: {reason}")
