"""Captioning folders of videos: the batch pipeline, its job state, shards and writers.

    from kvcap.caption import caption_folder
    for result in caption_folder("videos/", captioner, "out/", formats="jsonl,srt"):
        print(result.video, result.status, result.caption)

Importing this package loads neither torch nor a video decoder.
"""

from kvcap.caption.decoding import segment_windows
from kvcap.caption.inputs import VideoInput, parse_formats, resolve_inputs
from kvcap.caption.job import CaptionsLedger, JobFile, JobLockedError, JobProgress
from kvcap.caption.pipeline import caption_folder
from kvcap.caption.results import CaptionResult, PipelineStats
from kvcap.caption.shard import MergeReport, Shard, ShardError, merge_shards, parse_shard

__all__ = [
    "CaptionResult",
    "CaptionsLedger",
    "JobFile",
    "JobLockedError",
    "JobProgress",
    "MergeReport",
    "PipelineStats",
    "Shard",
    "ShardError",
    "VideoInput",
    "caption_folder",
    "merge_shards",
    "parse_formats",
    "parse_shard",
    "resolve_inputs",
    "segment_windows",
]
