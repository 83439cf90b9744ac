"""The pass rule and the pass marks. The seed targets themselves are rows of the metric table
(kvcap.records.metrics); `score.target_<name>` overrides one for a run."""

from __future__ import annotations

from typing import Any, Mapping

from kvcap.records._coerce import num
from kvcap.records.metrics import METRIC_SPECS, labels


def passes_target(value: float, target: float) -> bool:
    """The one pass rule: a value passes when it is strictly above its target."""
    return value > target


def _seeds() -> dict[str, float]:
    return {name: spec.target for name, spec in METRIC_SPECS.items() if spec.target is not None}


class Targets:
    """Pass marks, metric -> value, for every registered metric with a target (table order).

    `Targets()` is the seed's; `Targets(meteor=0.45)` changes one; `targets.meteor` reads one.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, float] | None = None, **marks: float):
        given = {**(values or {}), **marks}
        object.__setattr__(self, "_values", {m: float(given.get(m, seed)) for m, seed in _seeds().items()})

    def __getattr__(self, name: str) -> float:
        if name.startswith("_"):  # `_values` itself, before __init__ set it (copy, pickle)
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no target for metric {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Targets are read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Targets) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return f"Targets({self._values!r})"

    def get(self, metric: str) -> float | None:
        return self._values.get(metric)

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Targets":
        """{metric: value}; missing or non-numeric values keep the seed's."""
        return cls({m: v for m in _seeds() if (v := num(data.get(m))) is not None})

    @classmethod
    def from_score_config(cls, score: Any) -> "Targets":
        """From a `[score]` table (dict from a run's config.toml) or a ScoreConfig object: its
        `target_<name>` keys (a metric without one keeps the seed's)."""
        if isinstance(score, dict):
            return cls.from_dict({m: score.get(f"target_{m}") for m in _seeds()})
        return cls.from_dict({m: getattr(score, f"target_{m}", None) for m in _seeds()})

    def passes(self, metric: str, value: float | None) -> bool | None:
        """True / False, or None when there is no value (or the metric has no target)."""
        target = self._values.get(metric)
        return None if value is None or target is None else passes_target(value, target)

    def describe(self) -> str:
        """`<label> > <mark>` for each metric, joined by ` · ` (the TUI's targets line)."""
        names = labels()
        return " · ".join(f"{names[m]} > {t:.2f}" for m, t in self._values.items())


def seed_targets() -> Targets:
    """The seed's pass marks for every metric registered now."""
    return Targets()


SEED_TARGETS = Targets()
"""The seed's pass marks of the built-in metrics (`seed_targets()` includes any registered later)."""
