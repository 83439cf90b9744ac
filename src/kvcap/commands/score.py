"""`kvcap score PREDICTIONS --refs MANIFEST`: METEOR, SigLIP2 and diversity, with the alarm."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kvcap.commands.options import click_type, config_options, resolve_config


@click.command()
@click.argument("predictions", type=click.Path(dir_okay=False))
@click.option("--refs", "refs", required=True, type=click.Path(dir_okay=False),
              help="Manifest JSONL with the reference captions (id, video, caption).")
@click.option("--metrics", default=None, metavar="LIST",
              help="Comma-separated subset of meteor,siglip,diversity (default: config score.metrics).")
@click.option("--tokenizer", type=click_type("score.tokenizer"), default=None,
              help="Tokens for METEOR and diversity (default: config score.tokenizer, kiwi).")
@click.option("--siglip", "siglip_model", default=None, metavar="MODEL",
              help="SigLIP2 hub id or local directory (default: config score.siglip).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON instead of a table (per-clip rows: --per-clip).")
@click.option("--per-clip", "per_clip", type=click.Path(dir_okay=False), default=None,
              help="Also write per-clip scores to this JSONL file.")
@click.option("--previous", type=click.Path(dir_okay=False), default=None,
              help="An earlier `kvcap score --json` output, for the 'SigLIP2 up, diversity down' alarm.")
@click.option("--device", default="auto", show_default=True,
              help="Device for SigLIP2: auto (cuda when present), cpu or cuda.")
@click.option("--grounding", is_flag=True,
              help="Also: METEOR against another clip's reference (blind baseline) and, where the "
                   "manifest has `attributes`, attribute accuracy (kvcap.metrics.grounding).")
@config_options
def score(predictions, refs, metrics, tokenizer, siglip_model, as_json, per_clip, previous, device,
          grounding, config_path, overrides):
    """Score PREDICTIONS (captions.jsonl, or JSONL with id/video + caption) against --refs.

    Predictions match references by id, else by video path (as written in the manifest, then
    by trailing path components, then by a unique basename). Unmatched ids on either side are
    reported, not dropped silently. Exit 1 with a one-line message on unusable input.
    """
    from kvcap.fsutil import atomic_write_text
    from kvcap.metrics import (
        ScoreInputError,
        UnknownMetricError,
        load_predictions,
        load_references,
        match_predictions,
        render_table,
        score_predictions,
    )
    from kvcap.metrics.siglip import SiglipUnavailable
    from kvcap.metrics.tokenize import TokenizerError

    cfg = resolve_config(config_path, overrides, {
        "score.metrics": metrics, "score.tokenizer": tokenizer, "score.siglip": siglip_model})
    try:
        preds = load_predictions(predictions)
        references = load_references(refs)
        previous_report = _load_previous(previous) if previous else None
    except ScoreInputError as exc:
        raise click.ClickException(str(exc)) from None
    matched = match_predictions(preds, references)
    if not any(key in references.captions for key in matched):
        examples = ", ".join(list(matched)[:3])
        raise click.ClickException(
            f"{predictions}: no prediction matches a reference in {refs} "
            f"({len(matched)} predictions, e.g. {examples}; {len(references.captions)} references)")
    progress = None if as_json else (lambda message: click.echo(message, err=True))
    try:
        report = score_predictions(matched, references.captions, cfg.score, videos=references.videos,
                                   previous=previous_report, device=device, progress=progress)
    except (SiglipUnavailable, UnknownMetricError, TokenizerError) as exc:
        raise click.ClickException(str(exc)) from None
    if grounding:
        from kvcap.metrics.grounding import add_grounding

        try:
            add_grounding(report, matched, references.captions, refs, cfg.score)
        except ScoreInputError as exc:
            raise click.ClickException(str(exc)) from None
    report.summary["prediction_errors"] = preds.errors
    report.summary["prediction_duplicates"] = preds.duplicates
    if per_clip:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in report.per_clip)
        atomic_write_text(per_clip, lines)
    if as_json:
        # The summary only: per-clip rows (one per clip, captions included) go to --per-clip.
        click.echo(json.dumps({"summary": report.summary}, ensure_ascii=False, indent=2))
    else:
        from rich.console import Console

        Console(file=sys.stdout).print(render_table(report))
        if grounding:
            from kvcap.metrics.grounding import render_grounding

            Console(file=sys.stdout).print(render_grounding(report.summary["grounding"]))


def _load_previous(path: str) -> dict:
    from kvcap.metrics import ScoreInputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoreInputError(f"{path}: previous score file not found") from None
    except (OSError, ValueError) as exc:
        raise ScoreInputError(f"{path}: not a score JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ScoreInputError(f"{path}: not a score JSON (expected an object)")
    return data
