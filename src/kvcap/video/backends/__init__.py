"""Decoding backends: PyAV (GOP-aware seeking, threaded) and decord.

Each backend module has `sample(path, info, times, size) -> (frames, frame_times)`:
`times` are target seconds relative to the stream start; it returns one (S, S, 3) or (H, W, 3)
uint8 frame per target (the frame shown at that time) and that frame's own time.
"""

from __future__ import annotations

import importlib.util

from kvcap.video.errors import VideoUnreadable

# Codecs decord's bundled FFmpeg decodes (measured: no AV1).
DECORD_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "mpeg4", "mjpeg", "mpeg2video", "mpeg1video"})


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def choose_backend(info, backend: str) -> str:
    """The backend to use for one file.

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


def get_backend(name: str):
    """The backend module by name."""
    if name == "pyav":
        from kvcap.video.backends import pyav_backend

        return pyav_backend
    if name == "decord":
        from kvcap.video.backends import decord_backend

        return decord_backend
    raise ValueError(f"unknown video backend {name!r}")
