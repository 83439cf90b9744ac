"""`kvcap export CKPT OUT [--bundle]`: copy a checkpoint, with its model card, to share or move."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("checkpoint", metavar="CKPT")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--bundle", is_flag=True,
              help="Put local backbone folders the checkpoint references inside the copy (hard links where "
                   "the file system allows), so OUT works on another machine.")
def export(checkpoint: str, out: Path, bundle: bool) -> None:
    """Copy checkpoint CKPT (a directory, or `demo`) to OUT with a fresh README.md model card.

    \b
    A checkpoint trained on a local backbone folder references it (path + fingerprint) instead
    of copying 16 GB; `--bundle` makes a self-contained copy.
    """
    from kvcap.model.export import export_checkpoint

    path, spec = export_checkpoint(checkpoint, out, bundle=bundle)
    refs = [p.ref["path"] for p in (spec.vision, spec.llm) if p.ref]
    click.echo(f"exported {checkpoint} -> {path}")
    if refs:
        click.echo(f"note: it still references {', '.join(refs)} on this machine (--bundle puts them inside)")
