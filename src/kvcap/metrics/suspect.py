"""METEOR apart for the captions `kvcap caption` marked `suspect` and the rest (issue 26): does
the mark point at the captions that are actually worse?"""

from __future__ import annotations

from typing import Any, Iterable


def meteor_by_suspect(per_clip: list[dict[str, Any]], suspect_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{"suspect": {"n", "meteor"}, "not_suspect": {"n", "meteor"}} over the clips with a METEOR
    (per_clip rows of kvcap.metrics.suite: "id", "meteor"); meteor None where n is 0."""
    marked = set(suspect_ids)
    groups: dict[str, list[float]] = {"suspect": [], "not_suspect": []}
    for row in per_clip:
        if row.get("meteor") is not None:
            groups["suspect" if row["id"] in marked else "not_suspect"].append(float(row["meteor"]))
    return {name: {"n": len(values), "meteor": sum(values) / len(values) if values else None}
            for name, values in groups.items()}


def describe(split: dict[str, dict[str, Any]]) -> str:
    """One line for the terminal."""
    def part(name: str, label: str) -> str:
        group = split[name]
        value = "-" if group["meteor"] is None else f"{group['meteor']:.4f}"
        return f"{value} on {group['n']} {label}"

    return f"METEOR {part('not_suspect', 'not suspect')}, {part('suspect', 'suspect')} (captions.jsonl `suspect`)"
