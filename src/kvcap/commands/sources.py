"""The Click type of a video input: an existing path, or a zip member `ARCHIVE.zip::MEMBER`."""

from __future__ import annotations

from pathlib import Path

import click


class SourcePath(click.Path):
    """Like `click.Path(exists=True)`, plus `ARCHIVE.zip::MEMBER` when the archive exists
    (whether the member is in it is checked, and reported per video, when it is read)."""

    def __init__(self) -> None:
        super().__init__(exists=True, path_type=Path)

    def convert(self, value, param, ctx):
        from kvcap.video.source import ZipMember, parse_source

        source = parse_source(value)
        if isinstance(source, ZipMember):
            if not source.archive.is_file():
                self.fail(f"zip archive {str(source.archive)!r} does not exist.", param, ctx)
            return Path(value)
        return super().convert(value, param, ctx)
