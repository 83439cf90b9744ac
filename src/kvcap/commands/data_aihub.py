"""`kvcap data import-aihub SRC --out DIR`: AI-Hub labels + videos (folders or zip parts) -> manifests."""

from __future__ import annotations

import click

from kvcap.commands.options import config_options, resolve_config

SHOWN_PER_KIND = 10


@click.command("import-aihub")
@click.argument("src", type=click.Path(file_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False), help="Folder for train.jsonl, val.jsonl and manifest.jsonl.")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 0.9),
              help="Share held out for val when the dataset has no split of its own (by a hash of each stem).")
@click.option("--val-count", default=None, type=click.IntRange(min=0), metavar="N",
              help="Exactly N val clips instead (the N lowest stem hashes), e.g. 1068.")
@click.option("--seed", default=42, show_default=True, type=int, help="Salt of the stem hash that splits.")
@click.option("--caption-field", "caption_fields", multiple=True, metavar="KEYS",
              help="Where the caption is, tried in order (repeatable; default annotation.description_kr). "
                   "Example: --caption-field annotations.0.description_kr")
@click.option("--unpack-to", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="Unpack videos compressed (DEFLATED) inside zip parts into DIR once; stored ones are read in place.")
@config_options
def import_aihub(src: str, out: str, val_fraction: float, val_count: int | None, seed: int,
                 caption_fields: tuple[str, ...], unpack_to: str | None,
                 config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Pair labels with videos by file stem into manifests, from folders or zip parts.

    \b
    Layouts: SRC/labels/**/<stem>.json + SRC/videos/**/<stem>.mp4, or AI-Hub's
    SRC/1.Training|2.Validation/라벨링데이터|원천데이터/TL_*|TS_*|VL_*|VS_* (folders or .zip).

    The caption is annotation.description_kr; a label without it is skipped (never another
    field unless --caption-field names it). AI-Hub's own split is kept; otherwise each clip's
    split is fixed by a hash of its stem, so adding or removing clips moves no other clip.
    Prints clips per split, caption lengths (characters, and model.llm tokens when its
    tokenizer loads offline) and every skipped file (all of them in OUT/skipped.jsonl).
    """
    from kvcap.data.aihub import import_aihub as run_import
    from kvcap.model.tokenizer import load_tokenizer_offline

    cfg = resolve_config(config_path, overrides)
    tokenizer, note = load_tokenizer_offline(cfg.model.llm)

    def unpack_progress(total: int):
        from tqdm import tqdm

        return tqdm(total=total, unit="B", unit_scale=True, desc=f"unpacking into {unpack_to}",
                    disable=None)  # None: no bar when stderr is not a terminal (tqdm's switch)

    report = run_import(
        src, out, val_fraction=val_fraction, val_count=val_count, seed=seed, caption_fields=caption_fields or None,
        unpack_to=unpack_to, unpack_progress=unpack_progress,
        tokenizer=tokenizer, tokenizer_id=cfg.model.llm, tokenizer_note=note,
        max_caption_tokens=cfg.train.max_caption_tokens,
    )

    from kvcap.console import first_of

    def show(title: str, entries: list[str]) -> None:
        if not entries:
            return
        click.echo(f"{title}: {len(entries)}", err=True)
        for line in first_of(entries, SHOWN_PER_KIND, f" (all in {report.files['skipped']})"):
            click.echo(f"  {line}", err=True)

    show("unreadable", [f"{path}: {reason}" for path, reason in report.unreadable])
    show("labels without a video", [str(p) for p in report.unpaired_labels])
    show("videos without a label", [str(p) for p in report.unpaired_videos])
    show("duplicate stems", [f"{p}: {reason}" for p, reason in report.duplicates])
    show("unreadable zip archives", [f"{p}: {reason}" for p, reason in report.bad_zips])
    if report.total == 0:
        raise click.ClickException(f"{src}: no label/video pairs with a caption")
    from kvcap.data.import_summary import print_summary

    print_summary(report)
    counts = ", ".join(f"{split} {n}" for split, n in report.counts.items() if n or split != "test")
    click.echo(f"imported {report.total} clips ({counts}; split: {report.split_source}) -> {report.files['manifest']}")
