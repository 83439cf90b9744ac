"""`kvcap score PREDICTIONS --refs MANIFEST`: METEOR, SigLIP2 and diversity, with the alarm."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kvcap.commands.options import LiveHelpOption, click_type, config_options, metrics_help, resolve_config


@click.command()
@click.argument("predictions", type=click.Path(dir_okay=False))
@click.option("--refs", "refs", required=True, type=click.Path(dir_okay=False),
              help="Manifest JSONL with the reference captions (id, video, caption).")
@click.option("--metrics", default=None, metavar="LIST", cls=LiveHelpOption, help_from=metrics_help)
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
@click.option("--check", is_flag=True,
              help="Exit 1 when a seed target fails or the mode-collapse alarm is raised (for CI).")
@config_options
def score(predictions, refs, metrics, tokenizer, siglip_model, as_json, per_clip, previous, device,
          grounding, check, config_path, overrides):
    """Score PREDICTIONS (captions.jsonl, or JSONL with id/video + caption) against --refs.

    Predictions match references by id, else by video path (as written in the manifest, then
    by trailing path components, then by a unique basename). Unmatched ids on either side are
    reported, not dropped silently. Unusable input is one line and exit 2; with --check, a
    failed target or the collapse alarm exits 1. SigLIP2 is skipped with a note when it cannot
    be loaded, unless you named it (`--metrics siglip`, `--siglip`, or `--set score....`).
    """
    from kvcap.metrics import score_predictions

    cfg = resolve_config(config_path, overrides, {
        "score.metrics": metrics, "score.tokenizer": tokenizer, "score.siglip": siglip_model})
    preds, references, matched = _matched(predictions, refs)
    previous_report = _load_previous(previous) if previous else None
    progress = None if as_json else (lambda message: click.echo(message, err=True))
    chosen, scorer = _siglip_or_skip(cfg, device, progress)
    if per_clip:
        _check_writable(per_clip, "--per-clip")
    report = score_predictions(matched, references.captions, cfg.score, videos=references.videos,
                               metrics=chosen, previous=previous_report, device=device, progress=progress,
                               siglip_scorer=scorer)
    if grounding:
        from kvcap.metrics.grounding import add_grounding

        add_grounding(report, matched, references.captions, refs, cfg.score)
    report.summary["prediction_errors"] = preds.errors
    report.summary["prediction_duplicates"] = preds.duplicates
    _meteor_by_suspect(report, preds, references)
    _show(report, as_json=as_json, per_clip=per_clip, grounding=grounding)
    if check:
        _exit_if_checks_fail(report.summary)


def _exit_if_checks_fail(summary: dict) -> None:
    """--check: exit 1, naming each failure, when a target fails or the alarm is raised."""
    failed = failed_checks(summary)
    if failed:
        click.echo(f"--check: {'; '.join(failed)}", err=True)
        sys.exit(1)


def failed_checks(summary: dict) -> list[str]:
    """What fails `--check`: each computed metric at or under its seed target, and the alarm."""
    from kvcap.records import passes_target

    failed = []
    for key, target in (summary.get("targets") or {}).items():
        value = summary.get(key)
        if value is not None and target is not None and not passes_target(value, target):
            failed.append(f"{key} {value:.3f} is not above the target {target:.2f}")
    if summary.get("collapse"):
        failed.append("mode collapse: " + "; ".join(summary.get("collapse_reasons") or []))
    return failed


def _meteor_by_suspect(report, preds, references) -> None:
    """METEOR apart for the captions `kvcap caption` marked suspect and the rest, into the summary."""
    from kvcap.metrics.loaders import match_keys
    from kvcap.metrics.suspect import meteor_by_suspect

    if report.summary.get("meteor") is None:
        return
    keys = match_keys(preds, references)
    report.summary["meteor_by_suspect"] = meteor_by_suspect(report.per_clip, (keys.get(k, k) for k in preds.suspect))


def _matched(predictions: str, refs: str):
    """(predictions, references, {key: prediction} matched to them); none matching is one line."""
    from kvcap.metrics import load_predictions, load_references, match_predictions

    preds = load_predictions(predictions)
    references = load_references(refs)
    matched = match_predictions(preds, references)
    if not any(key in references.captions for key in matched):
        examples = ", ".join(list(matched)[:3])
        raise click.ClickException(
            f"{predictions}: no prediction matches a reference in {refs} "
            f"({len(matched)} predictions, e.g. {examples}; {len(references.captions)} references)")
    return preds, references, matched


def _show(report, *, as_json: bool, per_clip: str | None, grounding: bool) -> None:
    """--per-clip rows (atomically), then the summary as JSON or the table (and grounding's)."""
    from kvcap.fsutil import atomic_write_text
    from kvcap.metrics import render_table

    if per_clip:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in report.per_clip)
        atomic_write_text(per_clip, lines)
    if as_json:
        # The summary only: per-clip rows (one per clip, captions included) go to --per-clip.
        click.echo(json.dumps({"summary": report.summary}, ensure_ascii=False, indent=2))
        return
    from kvcap.console import table_console

    table_console(sys.stdout).print(render_table(report))
    if grounding:
        from kvcap.metrics.grounding import render_grounding

        table_console(sys.stdout).print(render_grounding(report.summary["grounding"]))
    if report.summary.get("meteor_by_suspect"):
        from kvcap.metrics.suspect import describe

        click.echo(describe(report.summary["meteor_by_suspect"]))


def _siglip_or_skip(cfg, device: str, progress):
    """(metrics to compute, a loaded SigLIP2 scorer or None).

    The default metrics include SigLIP2, which needs torch and a model on disk (or the hub):
    when it can't load and the user did not ask for it by name, score the rest with a note.
    """
    from kvcap.metrics.suite import UnknownMetricError
    from kvcap.records import metric_names

    score_cfg = cfg.score
    # Asked for by the user (a flag, --set or their config file), not just the built-in default.
    named = (cfg.is_explicit("score.metrics") and "siglip" in score_cfg.metrics) or cfg.is_explicit("score.siglip")

    known = metric_names()
    chosen = [m for m in known if m in score_cfg.metrics]
    unknown = [m for m in score_cfg.metrics if m not in known]
    if unknown:
        raise UnknownMetricError(f"--metrics: unknown metric {unknown[0]!r}; choose from {', '.join(known)}")
    if "siglip" not in chosen:
        return chosen, None
    say = progress or (lambda message: None)
    try:
        from kvcap.metrics.siglip import SiglipUnavailable, load_siglip

        say(f"loading SigLIP2 {score_cfg.siglip}")
        return chosen, load_siglip(score_cfg.siglip, device=device)
    except ImportError as exc:  # torch/transformers not installed
        reason = f"needs {exc.name or 'torch'}, which is not installed"
    except SiglipUnavailable as exc:
        if named:
            raise
        reason = str(exc).split("; skip with")[0]
    if named:
        raise click.ClickException(f"SigLIP2: {reason}")
    click.echo(f"note: SigLIP2 skipped ({reason}); name it with --metrics siglip to make that an error", err=True)
    return [m for m in chosen if m != "siglip"], None


def _check_writable(path: str, option: str) -> None:
    """Fail in a second (exit 2), not after scoring, when `path` can't be written."""
    from kvcap.fsutil import check_writable_dir

    target = Path(path)
    if target.is_dir():
        raise click.ClickException(f"{option} {path}: is a folder, not a file")
    check_writable_dir(target.parent, option)


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
