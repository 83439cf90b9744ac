"""The seed's score targets: each metric must exceed its value (ScoreConfig.target_* defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kvcap.records._coerce import num

METRICS = ("meteor", "siglip", "diversity")
"""The scored metrics with a target, in table order."""

LABELS = {"meteor": "METEOR", "siglip": "SigLIP2", "diversity": "Diversity"}


def passes_target(value: float, target: float) -> bool:
    """The one pass rule: a value passes when it is strictly above its target."""
    return value > target


@dataclass(frozen=True)
class Targets:
    """Pass marks: a value passes when it is strictly above its target."""

    meteor: float = 0.40
    siglip: float = 0.10
    diversity: float = 0.50

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Targets":
        """{metric: value}; missing or non-numeric values keep the seed's."""
        seed = cls()
        return cls(**{m: v if (v := num(data.get(m))) is not None else getattr(seed, m) for m in METRICS})

    @classmethod
    def from_score_config(cls, score: Any) -> "Targets":
        """From a `[score]` table (dict from a run's config.toml) or a ScoreConfig object."""
        if isinstance(score, dict):
            return cls.from_dict({m: score.get(f"target_{m}") for m in METRICS})
        return cls.from_dict({m: getattr(score, f"target_{m}", None) for m in METRICS})

    def passes(self, metric: str, value: float | None) -> bool | None:
        """True / False, or None when there is no value."""
        return None if value is None else passes_target(value, getattr(self, metric))

    def describe(self) -> str:
        """`METEOR > 0.40 · SigLIP2 > 0.10 · Diversity > 0.50`"""
        return " · ".join(f"{LABELS[m]} > {getattr(self, m):.2f}" for m in METRICS)


SEED_TARGETS = Targets()
