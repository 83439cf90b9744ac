"""Typed per-file video errors.

Every failure to read one video is a `VideoError` subclass carrying the path and a one-line
reason, so a batch can record it (`str(err)` is `"<path>: <reason>"`) and move on.
"""

from __future__ import annotations

from pathlib import Path

from kvcap.errors import KvcapError


class VideoError(KvcapError):
    """A video that cannot be probed or sampled. `str(err)` is `"<path>: <one-line reason>"`."""

    kind = "video_error"

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        # Decoder messages can span lines; users get one line.
        self.reason = " ".join(str(reason).split()) or "unknown error"
        super().__init__(f"{self.path}: {self.reason}")


class VideoMissing(VideoError):
    """The path does not exist (or is a symbolic link to nothing)."""

    kind = "missing"


class VideoEmpty(VideoError):
    """The file has zero bytes."""

    kind = "empty"


class NotAVideo(VideoError):
    """The file is something else: text, an image, a directory."""

    kind = "not_a_video"


class VideoCorrupt(VideoError):
    """It looks like a video container but is truncated or damaged, or no frame decodes."""

    kind = "corrupt"


class DamagedZipMember(VideoCorrupt):
    """A zip member whose bytes broke while being read (a bad CRC, broken deflate data, cut off)."""

    kind = "corrupt"


class NoVideoStream(VideoError):
    """A valid media file without a video stream (audio only, subtitles only)."""

    kind = "no_video_stream"


class VideoUnreadable(VideoError):
    """The file exists but cannot be read: permissions, or no backend decodes its codec."""

    kind = "unreadable"


__all__ = [
    "VideoError", "VideoMissing", "VideoEmpty", "NotAVideo", "VideoCorrupt", "NoVideoStream",
    "VideoUnreadable",
]
