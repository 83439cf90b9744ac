"""`kvcap review OUT [--refs MANIFEST] [--open]`: the review page of a caption job."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kvcap.commands.options import click_type, config_options, resolve_config


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--refs", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="MANIFEST",
              help="Manifest JSONL: show each video's reference caption and its METEOR.")
@click.option("--tokenizer", type=click_type("score.tokenizer"), default=None,
              help="Tokens for METEOR (default: config score.tokenizer, kiwi).")
@click.option("--workers", type=click_type("caption.workers"), default=None,
              help="Threads decoding the thumbnails, or `auto` (default: caption.workers, as `kvcap caption`).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the web browser when written.")
@config_options
def review(out: Path, refs: Path | None, tokenizer: str | None, workers: int | str | None, open_page: bool,
           config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Write OUT/review.html: every video of the caption job in OUT with a strip of the frames
    the model was given (sampled again; thumbnails in OUT/review/), its captions and times,
    error reasons and confidence figures; with --refs, the reference and METEOR beside it.

    \b
      kvcap review out                       then open out/review.html in a browser
      kvcap review out --refs data/val.jsonl --open

    The page needs no server and no network: search, sort by METEOR or confidence, and
    filter errors or suspect captions. Videos are found again from job.json's inputs. Exit
    status: 0 written; 1 written, but some videos could not be sampled again (moved, deleted:
    named on stderr and on their rows); 2 OUT is not a caption output or the manifest is unusable.
    """
    from kvcap.review import write_review

    cfg = resolve_config(config_path, overrides, {"score.tokenizer": tokenizer, "caption.workers": workers})
    report = write_review(out, refs=refs, score_cfg=cfg.score, workers=cfg.caption.workers, backend=cfg.video.backend,
                          say=lambda text: click.echo(text, err=True))
    from kvcap.console import first_of

    for line in first_of([f"frames not shown: {e}" for e in report.frame_errors], 10, " (named on their rows)"):
        click.echo(f"  {line}", err=True)
    click.echo(f"wrote {report.page} ({report.videos} videos, {report.strips} strips, "
               f"{report.page_bytes / 1e6:.2f} MB + {report.strip_bytes / 1e6:.2f} MB thumbnails) in {report.seconds:.1f} s")
    if open_page:
        import webbrowser

        webbrowser.open(report.page.resolve().as_uri())
    if report.frame_errors:
        sys.exit(1)
