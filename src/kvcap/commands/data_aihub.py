"""`kvcap data import-aihub SRC --out DIR`: AI-Hub labels + videos -> manifest JSONL with a split."""

from __future__ import annotations

import click

SHOWN_PER_KIND = 10


@click.command("import-aihub")
@click.argument("src", type=click.Path(file_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False), help="Folder for train.jsonl, val.jsonl and manifest.jsonl.")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 0.9), help="Share held out for val when the dataset has no split of its own.")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of that split.")
def import_aihub(src: str, out: str, val_fraction: float, seed: int) -> None:
    """Pair SRC/labels/**/<stem>.json with SRC/videos/**/<stem>.mp4 into manifests.

    The caption is read from annotation.description_kr (or description, caption, ...). The
    dataset's own split is used where its folders name one (Training/Validation, TL_/VL_).
    """
    from kvcap.data.aihub import AIHubImportError
    from kvcap.data.aihub import import_aihub as run_import

    try:
        report = run_import(src, out, val_fraction=val_fraction, seed=seed)
    except (AIHubImportError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    def show(title: str, entries: list[str]) -> None:
        if not entries:
            return
        click.echo(f"{title}: {len(entries)}", err=True)
        for entry in entries[:SHOWN_PER_KIND]:
            click.echo(f"  {entry}", err=True)
        if len(entries) > SHOWN_PER_KIND:
            click.echo(f"  ... and {len(entries) - SHOWN_PER_KIND} more", err=True)

    show("unreadable", [f"{path}: {reason}" for path, reason in report.unreadable])
    show("labels without a video", [str(p) for p in report.unpaired_labels])
    show("videos without a label", [str(p) for p in report.unpaired_videos])
    show("duplicate stems (kept the first)", [str(p) for p in report.duplicates])
    if report.total == 0:
        raise click.ClickException(f"{src}: no label/video pairs with a caption")
    counts = ", ".join(f"{split} {n}" for split, n in report.counts.items() if n or split != "test")
    click.echo(f"imported {report.total} clips ({counts}; split: {report.split_source}) -> {report.files['manifest']}")
