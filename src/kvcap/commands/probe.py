"""`kvcap probe PATH...`: a row per video (size, fps, duration, codec, rotation) or its error."""

from __future__ import annotations

import json

import click

from kvcap.commands.options import click_type


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one object per file) instead of a table.")
@click.option(
    "--backend", type=click_type("video.backend"), default="auto", show_default=True,
    help="Decoder to check the files against (decord refuses codecs it cannot decode, e.g. AV1).",
)
def probe(paths: tuple[str, ...], as_json: bool, backend: str) -> None:
    """Describe videos (folders are searched recursively); exit 1 if any cannot be read.

    A PATH may also be a zip part (its videos), one member of it (`TS_01.zip::A001.mp4`) or a
    manifest `.jsonl` (its clips).
    """
    from kvcap.video import VideoError
    from kvcap.video import probe as probe_video
    from kvcap.video.listing import NoVideosError
    from kvcap.data.inputs import expand_inputs  # folders, .zip parts, manifests, a.zip::b.mp4

    not_videos: list = []
    videos = expand_inputs(paths, skipped=not_videos)
    if not videos:
        raise NoVideosError(paths, not_videos)
    if not_videos:
        what = "file that is not a video" if len(not_videos) == 1 else "files that are not videos"
        click.echo(f"skipped {len(not_videos)} {what}", err=True)
    records = []
    for path in videos:
        try:
            info = probe_video(path, backend)
            records.append({"status": "ok", **info.to_dict(), "error": None})
        except VideoError as exc:
            records.append({"status": "error", "path": str(path), "error_type": type(exc).__name__, "error": exc.reason})
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        _print_table(records, show_backend=backend != "auto")
    if any(r["status"] != "ok" for r in records):
        raise SystemExit(1)


def _print_table(records: list[dict], show_backend: bool) -> None:
    """One row per file; an error row names its error type, and the one-line reasons follow."""
    from rich.markup import escape
    from rich.table import Table

    from kvcap.console import table_console

    table = Table(title=f"{len(records)} file(s)")
    columns = [("file", "left"), ("size", "right"), ("fps", "right"), ("seconds", "right"),
                          ("frames", "right"), ("codec", "left"), ("rot", "right")]
    columns += [("backend", "left")] if show_backend else []
    for name, justify in columns + [("status", "left")]:
        # Numbers never wrap; a long path folds instead.
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name in ("size", "fps", "seconds", "frames", "rot"))
    for r in records:
        if r["status"] == "ok":
            table.add_row(
                escape(r["path"]), f"{r['width']}x{r['height']}", f"{r['fps']:.2f}", f"{r['duration']:.2f}",
                str(r["frame_count"]), r["codec"], str(r["rotation"]),
                *([r["backend"]] if show_backend else []), "[green]ok[/]",
            )
        else:
            blanks = [""] * (len(columns) - 1)
            table.add_row(escape(r["path"]), *blanks, f"[red]{r['error_type']}[/]")
    console = table_console()
    console.print(table)
    failed = [r for r in records if r["status"] != "ok"]
    for r in failed:
        console.print(f"[red]error[/] {escape(r['path'])}: {escape(r['error'])}", soft_wrap=True)
    console.print(f"{len(records) - len(failed)} readable, {len(failed)} failed")
