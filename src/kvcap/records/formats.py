"""The output formats of `kvcap caption`: ONE table, keyed by the name users type in `--format`
(the shape of whisper's writers keyed by extension).

Everything that lists formats derives from `FORMATS`: the config constraint on
`caption.formats`, `-f/--format`'s help, `-f all`, the sink that writes each video's files, and
the README/docs list (a test checks they name exactly these). Adding a format is one row here.

A row names its writer as `"module:function"`, a function `(segments) -> document text`, so
this low module (config reads it) never imports the writers above it; `kvcap.caption.writers`
resolves the name when a file is written. Torch-free, click-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class OutputFormat:
    """One `--format` choice."""

    name: str
    """What users type (`-f srt`) and the file's extension."""
    about: str
    """One line for `--help` and the docs."""
    writer: str | Callable[..., str] | None = None
    """`"module:function"` (or the function) giving the document text from a list of Segments;
    None for the ledger (captions.jsonl), which the job writes itself."""
    cued: bool = False
    """Its cues follow `[subtitle]` (broadcast style: short cues of at most 2 lines, kvcap.caption.
    cue_timing); False = one entry per segment holding the segment's whole caption."""

    @property
    def subtitle(self) -> bool:
        """A per-video file beside the captions (`name.srt`), written by the sink."""
        return self.writer is not None


LEDGER = "jsonl"
"""captions.jsonl: always written (resume reads it), whatever `--format` says."""

_WRITERS = "kvcap.caption.writers"

FORMATS: dict[str, OutputFormat] = {
    fmt.name: fmt
    for fmt in (
        OutputFormat(LEDGER, "captions.jsonl, one record per video (always written: resume reads it)"),
        OutputFormat("srt", "SubRip subtitles", f"{_WRITERS}:srt_text", cued=True),
        OutputFormat("vtt", "WebVTT subtitles", f"{_WRITERS}:vtt_text", cued=True),
        OutputFormat("txt", "plain text, one line per segment", f"{_WRITERS}:txt_text"),
        OutputFormat("tsv", "start<TAB>end<TAB>text in milliseconds, as whisper's", f"{_WRITERS}:tsv_text"),
    )
}
"""Name -> format, in the order files are listed and written."""

DEFAULT_FORMATS = (LEDGER, "srt")
"""`caption.formats` when nothing sets it."""


def format_names() -> tuple[str, ...]:
    """Every format, in table order (what `-f all` writes)."""
    return tuple(FORMATS)


def subtitle_formats() -> tuple[str, ...]:
    """The per-video files (every format but the ledger)."""
    return tuple(name for name, fmt in FORMATS.items() if fmt.subtitle)


def register_format(fmt: OutputFormat) -> OutputFormat:
    """Add (or replace) a format at the end of the table; returns it."""
    if fmt.name == "all" or not fmt.name.isidentifier():
        raise ValueError(f"format name {fmt.name!r}: must be a word other than `all`")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    """Remove a format added by `register_format` (the ledger stays)."""
    if name != LEDGER:
        FORMATS.pop(name, None)
