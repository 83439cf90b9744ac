"""Proof that captions come from the pixels: a blind baseline and attribute accuracy.

    grounding_report(predictions, references, attributes, cfg, meteor=None) -> dict
    load_attributes(manifest) -> {id: {attribute: value}}
    render_grounding(summary) -> rich Table

*Blind baseline.* Templated captions share many words whatever the clip shows, so METEOR alone
cannot tell a model that looks from one that writes a plausible caption blind. The blind
baseline scores every caption against a *different* clip's reference: the clips sorted by id,
caption i against the references of clip i+1 (a fixed derangement, the same on every run). The
gap between METEOR and this baseline is what looking at the clip is worth.

*Attribute accuracy.* Where the references manifest carries `attributes` (synthetic scenes
store the ground truth they were drawn from), each caption is read back with
`kvcap.data.synth.parse_attributes` and compared with the truth, per attribute. A caption that
does not name an attribute counts as wrong for it.

`kvcap score --grounding` prints both beside the usual table; the demo recipe records them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from kvcap.records import passes_target

# Attributes with a target (the list) first, then the others a caption also names.
TARGET_ATTRIBUTES = ("time_of_day", "scene", "weather", "motion")
EXTRA_ATTRIBUTES = ("objects", "direction", "count", "color", "variant")
TARGET_ACCURACY = 0.80
TARGET_GAP = 0.15
TARGET_DIVERSITY_SHARE = 0.90  # predictions' diversity as a share of the references' own


def blind_pairs(ids: Sequence[str]) -> dict[str, str]:
    """id -> the id whose references it is scored against blind (never itself; needs 2 ids)."""
    ordered = sorted(ids)
    if len(ordered) < 2:
        return {}
    return {clip: ordered[(k + 1) % len(ordered)] for k, clip in enumerate(ordered)}


def load_attributes(manifest: str | Path) -> dict[str, dict[str, Any]]:
    """`attributes` per id from a manifest JSONL (ids without any are left out).

    Reading errors are `kvcap.metrics.ScoreInputError` naming the file and line; `kvcap score`
    has already read the same file as references, so they are rare here.
    """
    from kvcap.metrics.loaders import ScoreInputError, _records

    manifest = Path(manifest)
    found: dict[str, dict[str, Any]] = {}
    for number, record in _records(manifest, "references"):
        attributes = record.get("attributes")
        if attributes is None:
            continue
        if not isinstance(attributes, dict):
            raise ScoreInputError(f"{manifest}:{number}: 'attributes' must be an object, got {type(attributes).__name__}")
        found[str(record.get("id", record.get("video")))] = attributes
    return found


def attribute_accuracy(predictions: Mapping[str, str], attributes: Mapping[str, Mapping[str, Any]],
                       names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """attribute -> {"accuracy", "n", "unnamed"} over the ids that have both a caption and the truth."""
    from kvcap.data.synth import parse_attributes

    ids = [i for i in predictions if i in attributes]
    parsed = {i: parse_attributes(predictions[i]) for i in ids}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        scored = [i for i in ids if name in attributes[i]]
        if not scored:
            continue
        right = sum(parsed[i].get(name) == attributes[i][name] for i in scored)
        unnamed = sum(parsed[i].get(name) is None for i in scored)
        out[name] = {"accuracy": right / len(scored), "n": len(scored), "unnamed": unnamed}
    return out


def grounding_report(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    attributes: Mapping[str, Mapping[str, Any]] | None,
    cfg,
    *,
    meteor: float | None = None,
    diversity: float | None = None,
    ref_diversity: float | None = None,
    token_cache=True,
) -> dict[str, Any]:
    """The grounding summary for predictions matched to references (see the module docstring).

    `cfg` is a `ScoreConfig` (its tokenizer is used). `meteor`, `diversity`, `ref_diversity`
    are the suite's own numbers for the same clips (METEOR is recomputed when not given).
    """
    from kvcap.metrics.meteor import meteor as meteor_score
    from kvcap.metrics.tokenize import TokenCache, get_tokenizer, tokenize_texts

    ids = [i for i in references if i in predictions]
    pairs = blind_pairs(ids)
    tokenizer = get_tokenizer(cfg.tokenizer)
    cache = TokenCache() if token_cache is True else (token_cache or None)
    ref_texts = [r for i in ids for r in references[i]]
    tokens = tokenize_texts(ref_texts + [predictions[i] for i in ids], tokenizer, cache=cache, cacheable=ref_texts)

    def score(clip: str, against: str) -> float:
        return meteor_score([tokens[r] for r in references[against]], tokens[predictions[clip]])

    if meteor is None and ids:
        meteor = sum(score(i, i) for i in ids) / len(ids)
    blind = sum(score(i, pairs[i]) for i in ids) / len(ids) if pairs else None
    summary: dict[str, Any] = {
        "n": len(ids),
        "tokenizer": tokenizer.name,
        "meteor": meteor,
        "blind_meteor": blind,
        "meteor_gap": (meteor - blind) if meteor is not None and blind is not None else None,
        "diversity": diversity,
        "ref_diversity": ref_diversity,
        "diversity_share": (diversity / ref_diversity) if diversity is not None and ref_diversity else None,
        "attributes": {},
        "attributes_n": 0,
        "targets": {"meteor": cfg.target_meteor, "meteor_gap": TARGET_GAP,
                    "diversity_share": TARGET_DIVERSITY_SHARE, "attribute_accuracy": TARGET_ACCURACY,
                    "attributes_with_target": list(TARGET_ATTRIBUTES)},
    }
    if attributes:
        matched = {i: predictions[i] for i in ids if i in attributes}
        summary["attributes_n"] = len(matched)
        summary["attributes"] = attribute_accuracy(matched, attributes, TARGET_ATTRIBUTES + EXTRA_ATTRIBUTES)
        # The references read back through the same parser: 1.0 unless the grammar and the parser disagree.
        first_refs = {i: references[i][0] for i in matched}
        summary["reference_attributes"] = {
            name: row["accuracy"] for name, row in attribute_accuracy(first_refs, attributes, TARGET_ATTRIBUTES).items()
        }
    summary["passed"] = passed(summary)
    return summary


def passed(summary: Mapping[str, Any]) -> dict[str, bool | None]:
    """Target -> pass (True/False), or None where the number could not be computed. The one
    pass rule (`records.passes_target`): strictly above the target, as in the score table."""
    targets = summary["targets"]

    def above(value, target):
        return None if value is None else passes_target(value, target)

    out = {
        "meteor": above(summary.get("meteor"), targets["meteor"]),
        "meteor_gap": above(summary.get("meteor_gap"), targets["meteor_gap"]),
        "diversity_share": above(summary.get("diversity_share"), targets["diversity_share"]),
    }
    for name in TARGET_ATTRIBUTES:
        row = summary.get("attributes", {}).get(name)
        out[f"attribute:{name}"] = above(row["accuracy"] if row else None, targets["attribute_accuracy"])
    return out


def render_grounding(summary: Mapping[str, Any]):
    """A rich Table: METEOR vs the blind baseline, diversity vs the references', attributes."""
    from rich.table import Table

    def fmt(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    def verdict(ok) -> str:
        return "" if ok is None else ("[green]pass[/]" if ok else "[red]fail[/]")

    t = summary["targets"]
    ok = summary.get("passed") or passed(summary)
    table = Table(title=f"grounding: {summary['n']} clips, tokenizer {summary['tokenizer']}", title_justify="left")
    for name, justify in (("measure", "left"), ("value", "right"), ("baseline", "right"), ("target", "right"), ("result", "left")):
        table.add_column(name, justify=justify)
    table.add_row("METEOR", fmt(summary.get("meteor")), "", f"> {t['meteor']:.2f}", verdict(ok["meteor"]))
    table.add_row("METEOR, blind (another clip's reference)", fmt(summary.get("blind_meteor")), "", "", "")
    table.add_row("METEOR gap over blind", fmt(summary.get("meteor_gap")), "", f"> {t['meteor_gap']:.2f}", verdict(ok["meteor_gap"]))
    if summary.get("diversity") is not None:
        table.add_row("Diversity (1-selfBLEU4)", fmt(summary["diversity"]), fmt(summary.get("ref_diversity")) + " refs",
                      f"> {t['diversity_share']:.0%} of refs", verdict(ok["diversity_share"]))
    refs = summary.get("reference_attributes") or {}
    for name, row in (summary.get("attributes") or {}).items():
        target = f"> {t['attribute_accuracy']:.0%}" if name in TARGET_ATTRIBUTES else ""
        baseline = f"{refs[name]:.2f} refs" if name in refs else ""
        label = f"attribute {name}" + (f" ({row['unnamed']} unnamed)" if row["unnamed"] else "")
        table.add_row(label, f"{row['accuracy']:.1%}", baseline, target, verdict(ok.get(f"attribute:{name}")))
    if not summary.get("attributes"):
        table.caption = "no `attributes` in the references manifest: attribute accuracy not measured"
        table.caption_justify = "left"
    return table


def add_grounding(report, predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                  manifest: str | Path, cfg) -> dict[str, Any]:
    """`kvcap score --grounding`: compute the grounding summary for a suite `report` and store it
    as `report.summary["grounding"]` (reusing the suite's METEOR and diversity)."""
    s = report.summary
    summary = grounding_report(predictions, references, load_attributes(manifest), cfg,
                               meteor=s.get("meteor"), diversity=s.get("diversity"), ref_diversity=s.get("ref_diversity"))
    s["grounding"] = summary
    return summary
