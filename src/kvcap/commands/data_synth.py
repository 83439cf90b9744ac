"""`kvcap data synth`: write a synthetic dataset (H.264 clips + manifest.jsonl)."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (clips/ and manifest.jsonl).")
@click.option("--count", required=True, type=int, help="Number of clips.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same clips and manifest.")
@click.option("--size", default=112, show_default=True, type=int, help="Frame width and height in pixels (even).")
@click.option("--seconds", default=4.0, show_default=True, type=float, help="Clip length.")
@click.option("--fps", default=8, show_default=True, type=int, help="Frames per second.")
@click.option("--val-fraction", default=0.1, show_default=True, type=float, help="Share of clips in the val split.")
@click.option("--references", default=1, show_default=True, type=int, help="Differently worded captions per clip (>1 stores a list).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out_dir: str, count: int, seed: int, size: int, seconds: float, fps: int, val_fraction: float, references: int, quiet: bool) -> None:
    """Draw synthetic scenes with Korean captions written from the same attributes.

    \b
      kvcap data synth --out data/synth --count 2000 --seed 1
    """
    from kvcap.data.synth.synthesize import MANIFEST_NAME, check_args, synthesize

    try:
        check_args(count, size, seconds, fps, val_fraction, references)
    except ValueError as exc:
        # check_args names the option first ("size must be ..."): point the user at the flag.
        option = "--" + str(exc).split()[0].replace("_", "-")
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=count, unit="clip", desc="synth", leave=False, disable=None)  # None: off on no terminal
    try:  # errors (an unwritable OUT) reach kvcap.cli, which prints one line; the bar goes first
        items = synthesize(
            out_dir, count, seed, size=size, seconds=seconds, fps=fps, val_fraction=val_fraction,
            references=references, progress=(lambda done, total: bar.update(1)) if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    n_val = sum(item.split == "val" for item in items)
    click.echo(f"wrote {len(items)} clips ({len(items) - n_val} train, {n_val} val) and {out_dir}/{MANIFEST_NAME}")
