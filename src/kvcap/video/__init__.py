"""Video input: find videos, probe them, sample frames (decord or PyAV).

    list_videos(paths) -> list[Path]
    probe(path, backend="auto") -> VideoInfo
    sample_frames(path, num_frames=8, size=336, backend="auto", start=None, end=None) -> SampledFrames
    VideoError(path, reason) and VideoMissing, VideoEmpty, NotAVideo, VideoCorrupt (and its
        DamagedZipMember), NoVideoStream, VideoUnreadable; str(err) == "<path>: <one-line reason>"

Importing this package is cheap (numpy only); PyAV and decord load when first used.
"""

from kvcap.video.errors import (
    DamagedZipMember, NotAVideo, NoVideoStream, VideoCorrupt, VideoEmpty, VideoError, VideoMissing, VideoUnreadable,
)
from kvcap.video.listing import VIDEO_EXTENSIONS, has_video_extension, list_videos
from kvcap.video.probe import BACKENDS, VideoInfo, probe
from kvcap.video.sampler import SampledFrames, sample_frames, segment_centres

__all__ = [
    "BACKENDS", "VIDEO_EXTENSIONS", "DamagedZipMember", "NotAVideo", "NoVideoStream", "SampledFrames", "VideoCorrupt",
    "VideoEmpty", "VideoError", "VideoInfo", "VideoMissing", "VideoUnreadable", "has_video_extension",
    "list_videos", "probe", "sample_frames", "segment_centres",
]
