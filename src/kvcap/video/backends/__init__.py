"""Decoding backends: PyAV (GOP-aware seeking, threaded) and decord.

Each backend module has `sample(path, info, times, size) -> (frames, frame_times)`:
`times` are target seconds relative to the stream start; it returns one (S, S, 3) or (H, W, 3)
uint8 frame per target (the frame shown at that time) and that frame's own time. Which backend
a file gets is the probe's choice (`kvcap.video.probe.choose_backend`, recorded in `VideoInfo.backend`).
"""

from __future__ import annotations


def get_backend(name: str):
    """The backend module by name."""
    if name == "pyav":
        from kvcap.video.backends import pyav_backend

        return pyav_backend
    if name == "decord":
        from kvcap.video.backends import decord_backend

        return decord_backend
    raise ValueError(f"unknown video backend {name!r}")
