"""The table `kvcap data import-aihub` prints: clips per split, where they came from, caption
lengths (characters, LLM tokens), what training would cut, and how many files were skipped."""

from __future__ import annotations

from kvcap.data.aihub import ImportReport


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def summary_rows(report: ImportReport) -> list[tuple[str, str]]:
    """(what, value) rows; plain text."""
    rows = [(f"clips {split}", str(n)) for split, n in report.counts.items() if n or split != "test"]
    rows.append(("split", {"dataset": "the dataset's own folders", "hashed": "hash of the stem (stable)",
                           "mixed": "dataset folders, the rest by stem hash"}.get(report.split_source, report.split_source)))
    if report.zips:
        rows.append(("zip parts read", str(report.zips)))
        rows.append(("clips read in place from zips", str(report.zipped_videos)))
    if report.unpack_dir is not None:
        rows.append(("unpacked (deflated in zip)", f"{report.unpacked} -> {report.unpack_dir}"))
    if report.deflated_in_place:
        rows.append(("deflated in zip, read in place", f"{len(report.deflated_in_place)} (slow to seek: rerun with --unpack-to DIR)"))
    rows.append(("caption field", ", ".join(report.caption_fields)))
    stats = report.stats
    if stats is not None:
        c = stats.chars
        rows.append(("caption chars (median / p95 / max)", f"{_fmt(c.median)} / {_fmt(c.p95)} / {c.max}"))
        if stats.tokens is not None:
            t = stats.tokens
            rows.append((f"caption tokens, {stats.tokenizer} (median / p95 / max)", f"{_fmt(t.median)} / {_fmt(t.p95)} / {t.max}"))
            if stats.would_cut is not None:
                rows.append((f"cut by train.max_caption_tokens = {stats.max_caption_tokens}", f"{stats.would_cut} of {stats.captions}"))
        else:
            rows.append(("caption tokens", f"characters only: {stats.tokenizer_note}"))
    rows += [("note", note) for note in report.notes]
    skipped = report.skipped
    rows.append(("skipped files", f"{len(skipped)}" + (f" (reasons in {report.files.get('skipped')})" if skipped else "")))
    return rows


def print_summary(report: ImportReport) -> None:
    """The rows as a rich table on stdout."""
    from rich.markup import escape
    from rich.table import Table

    from kvcap.console import table_console

    table = Table(title="import summary", show_header=False)
    table.add_column("what", overflow="fold")
    table.add_column("value", overflow="fold")
    for what, value in summary_rows(report):
        table.add_row(escape(what), escape(value))
    table_console().print(table)
