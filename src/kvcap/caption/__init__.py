"""Captioning folders of videos: the batch pipeline, its job state, shards and writers.

    from kvcap.caption import CaptionOptions, CaptionSession, caption_folder
    session = CaptionSession.open(cfg)   # the checkpoint loaded; auto quantization and batch chosen here
    options = session.caption_options(formats="jsonl,srt")   # or CaptionOptions(...) with a captioner of your own
    for result in caption_folder("videos/", session.captioner, "out/", options):
        print(result.video, result.status, result.caption)

Importing this package loads neither torch nor a video decoder.
"""

from kvcap.caption.decoding import segment_windows
from kvcap.caption.inputs import VideoInput, parse_formats, resolve_inputs
from kvcap.caption.job import CaptionsLedger, JobFile, JobLockedError, JobProgress
from kvcap.caption.pipeline import caption_folder
from kvcap.caption.plan import CaptionOptions
from kvcap.caption.results import CaptionResult, PipelineStats
from kvcap.caption.session import CaptionSession
from kvcap.caption.shard import MergeReport, Shard, ShardError, merge_shards, parse_shard

__all__ = [
    "CaptionOptions",
    "CaptionResult",
    "CaptionSession",
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
