"""Probe a video: classify what is wrong with it, or describe it (`VideoInfo`).

PyAV does the probing for every backend: it opens what decord opens and more, its failures
are exceptions rather than C++ log lines, and it reads the display matrix (rotation).
"""

from __future__ import annotations

import importlib.util
import os
import stat
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from kvcap.video.errors import (
    NotAVideo, NoVideoStream, VideoCorrupt, VideoEmpty, VideoError, VideoMissing, VideoUnreadable,
)
from kvcap.video.geometry import display_size, normalise_rotation

BACKENDS = ("auto", "decord", "pyav")

# Demuxers that read single images: a PNG renamed .mp4 opens as a one-frame "video".
IMAGE_FORMATS_SUFFIX = ("_pipe",)
IMAGE_FORMATS = {"image2", "gif", "webp", "apng", "bmp", "tiff"}

# How far to look for the first decodable frame before calling a file corrupt.
FIRST_FRAME_PACKET_LIMIT = 512


@dataclass(frozen=True)
class VideoInfo:
    """What a probe found. `width`/`height` are as a player shows the video (after rotation)."""

    path: Path
    duration: float  # seconds
    fps: float  # average frame rate (frames / second)
    frame_count: int  # from the container when it says, else duration * fps
    width: int
    height: int
    codec: str
    rotation: int = 0  # clockwise degrees a player turns the stored frames: 0, 90, 180, 270
    container: str = ""
    coded_width: int = 0  # as stored in the stream
    coded_height: int = 0
    start_time: float = 0.0  # seconds; timestamps kvcap reports are relative to it
    backend: str = "pyav"  # what sample_frames(backend="auto") uses for this file

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


# Codecs decord's bundled FFmpeg decodes (measured: no AV1).
DECORD_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "mpeg4", "mjpeg", "mpeg2video", "mpeg1video"})


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def choose_backend(info, backend: str) -> str:
    """The backend to use for one file (the probe records it as `VideoInfo.backend`).

    `auto` is PyAV: on H.264 at 720p/1080p kvcap's GOP-aware PyAV sampler is faster than
    decord (bench/frames.py), and PyAV handles every codec and rotation. `decord` is honoured
    where decord can read the file and refused with a one-line reason where it cannot.
    """
    if backend == "pyav" or backend == "auto":
        return "pyav"
    if backend == "decord":
        if not decord_available():
            raise VideoUnreadable(info.path, "backend decord is not installed (use --backend pyav or auto)")
        if info.codec not in DECORD_CODECS:
            raise VideoUnreadable(info.path, f"decord cannot decode {info.codec} (use backend pyav or auto)")
        return "decord"
    raise ValueError(f"unknown video backend {backend!r}; choose one of auto, decord, pyav")


def check_file(path: Path) -> None:
    """Raise the typed error for a path that is not a readable, non-empty regular file."""
    if not os.path.lexists(path):
        raise VideoMissing(path, "file not found")
    if not path.exists():  # lexists but not exists: a link to nothing
        raise VideoMissing(path, f"broken symbolic link (points to {os.readlink(path)})")
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise NotAVideo(path, "is a directory, not a video file")
    if not stat.S_ISREG(mode):
        raise NotAVideo(path, "is not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoUnreadable(path, "permission denied")
    if path.stat().st_size == 0:
        raise VideoEmpty(path, "empty file (0 bytes)")


def sniff(path: Path) -> tuple[str, str]:
    """('video' | 'image' | 'text' | 'unknown', description) from the first bytes of the file."""
    from kvcap.video.source import open_source  # a plain file or a zip member (`a.zip::b.mp4`)

    try:
        with open_source(path) as fh:
            head = fh.read(512)
    except OSError as exc:
        raise VideoUnreadable(path, exc.strerror or str(exc)) from None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "video", "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", "AVI"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")) or head[:1] == b"\x47" and head[188:189] == b"\x47":
        return "video", "MPEG"
    images = {
        b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
        b"BM": "a BMP image",
    }
    for magic, name in images.items():
        if head.startswith(magic):
            return "image", name
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", "a WebP image"
    try:
        text = head.decode("utf-8", errors="strict") if b"\x00" not in head else None
    except UnicodeDecodeError as exc:  # a multi-byte character cut at byte 512 is still text
        text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else None
    if text is not None:
        return "text", "a text file"
    return "unknown", "unrecognised data"


def _open_failure(path: Path, exc: Exception) -> VideoError:
    """Turn an av.open failure into the typed error, using the file's first bytes."""
    if isinstance(exc, PermissionError):
        return VideoUnreadable(path, "permission denied")
    kind, what = sniff(path)
    if kind == "video":
        detail = getattr(exc, "strerror", None) or str(exc)
        return VideoCorrupt(path, f"truncated or damaged {what} file ({detail})")
    if kind in ("image", "text"):
        return NotAVideo(path, f"not a video ({what})")
    return NotAVideo(path, "not a video (no known container format in the data)")


@contextmanager
def open_container(path: str | Path) -> Iterator[Any]:
    """`av.open` with every failure mapped to a typed `VideoError`."""
    import av

    from kvcap.video.avcompat import open_input
    from kvcap.video.source import is_zip_member, open_member_container

    path = Path(path)
    if is_zip_member(path):  # `ARCHIVE.zip::MEMBER`: PyAV reads the member through a file object
        with open_member_container(path, _open_failure) as container:
            yield container
        return
    check_file(path)
    try:
        container = open_input(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise _open_failure(path, exc) from None
    try:
        yield container
    finally:
        container.close()


def video_stream(container: Any, path: Path) -> Any:
    """The first video stream, after ruling out still images and audio-only files."""
    fmt = container.format.name
    if fmt in IMAGE_FORMATS or fmt.endswith(IMAGE_FORMATS_SUFFIX):
        kind, what = sniff(path)
        raise NotAVideo(path, f"not a video ({what if kind == 'image' else 'a still image'})")
    from kvcap.video.avcompat import is_cover_art

    streams = [s for s in container.streams.video if not is_cover_art(s)]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise NoVideoStream(path, f"no video stream (has: {', '.join(kinds)})")
    return streams[0]


def first_frames(container: Any, stream: Any, path: Path) -> list[Any]:
    """Decode up to the first frame (proves the stream decodes; carries the display matrix).

    Returns every frame the packet that produced the first one gave, so a caller can keep
    decoding from here without losing any.
    """
    import av

    try:
        for i, packet in enumerate(container.demux(stream)):
            frames = stream.codec_context.decode(packet)
            if frames:
                return list(frames)
            if i >= FIRST_FRAME_PACKET_LIMIT:
                break
    except av.FFmpegError as exc:
        raise VideoCorrupt(path, f"cannot decode: {exc.strerror or exc}") from None
    raise VideoCorrupt(path, "no frame could be decoded")


def inspect(container: Any, stream: Any, path: Path, backend: str) -> tuple[VideoInfo, list[Any]]:
    """(VideoInfo, the first decoded frames) of an open container's video stream."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if stream.codec_context is None:  # pragma: no cover - depends on the FFmpeg build
        raise VideoUnreadable(path, "no decoder for this codec")
    frames = first_frames(container, stream, path)
    info = describe(container, stream, path, frames[0])
    return replace(info, backend=choose_backend(info, backend)), frames


def stream_duration(container: Any, stream: Any) -> float:
    """Seconds: the stream's own duration, else the container's, else 0.

    With a single stream the container's duration wins when longer: MP4's per-stream
    duration can miss the last frames of a VFR clip with B-frames (measured with ffprobe).
    """
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    whole = max(0.0, container.duration / 1_000_000 - start) if container.duration else 0.0
    own = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    if own and len(container.streams) > 1:
        return own
    return max(own, whole)


def _codec_name(stream: Any) -> str:
    """The codec's own name (`av1`), not the decoder's (`libdav1d`)."""
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def describe(container: Any, stream: Any, path: Path, frame: Any) -> VideoInfo:
    """A VideoInfo from an open container and its first decoded frame."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = stream_duration(container, stream)
    frame_count = int(stream.frames or 0) or max(1, round(duration * fps))
    if duration <= 0 and fps > 0:
        duration = frame_count / fps
    rotation = normalise_rotation(-(getattr(frame, "rotation", 0) or 0))  # av: counter-clockwise
    width, height = display_size(frame.width, frame.height, rotation)
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    return VideoInfo(
        path=path, duration=duration, fps=fps, frame_count=frame_count, width=width, height=height,
        codec=_codec_name(stream), rotation=rotation, container=container.format.name,
        coded_width=frame.width, coded_height=frame.height, start_time=start,
    )


def probe(path: str | Path, backend: str = "auto") -> VideoInfo:
    """Describe one video, or raise its typed `VideoError`.

    `backend` names the decoder the caller means to use: `info.backend` is the one
    `sample_frames` would pick, and `decord` raises `VideoUnreadable` where decord cannot
    read the file (AV1, say), so a probe table tells the truth about that backend.
    """
    from kvcap.video.source import is_zip_member

    path = Path(path)
    if backend == "decord" and is_zip_member(path):
        backend = "pyav"  # decord cannot read a file object: zip members decode with PyAV
    with open_container(path) as container:
        stream = video_stream(container, path)
        info, _ = inspect(container, stream, path, backend)
    return info
