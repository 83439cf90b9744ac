"""One typed home for each file kvcap writes and reads back. Torch-free, textual-free.

    caption.py    CaptionRecord (a captions.jsonl line), JobState (job.json)
    run.py        RunState (state.json), TrainRow / EvalRow (metrics.jsonl), SampleRow
                  (samples.jsonl), RunSummary (summary.json); the best-eval rule and the
                  `kvcap compare` figures
    metrics.py    METRIC_SPECS: the one table of scored metrics (label, seed target, direction…)
    formats.py    FORMATS: the one table of `kvcap caption` output formats
    position.py   TrainPosition (a checkpoint's position.json): where a training run stands
    files.py      the names of the files above (state.json, job.json, ...), defined once
    targets.py    passes_target (the one pass rule); Targets, the pass marks of a run
    jsonl.py      the one JSONL line parser; "latest record per video"
    liveness.py   is a `running` state file's process alive?

Each model has `to_dict()` (the exact keys and order on disk) and a lenient `from_dict()`
(missing keys and wrong types give neutral defaults, so older files still read). Writers build
the model and write `to_dict()`; readers parse with `from_dict()`.
"""

from kvcap.records._coerce import parse_time, utc_now
from kvcap.records.caption import (
    CAPTION_STATUSES,
    FLAG_COMPRESSION_ABOVE,
    FLAG_LOGPROB_BELOW,
    JOB_STATUSES,
    CaptionRecord,
    JobState,
    compression_ratio,
    suspect_reason,
)
from kvcap.records.jsonl import dumps_jsonl, iter_jsonl, latest_per_video, read_json_object, read_jsonl
from kvcap.records.liveness import STALE_AFTER_S, PidAlive, live_status, pid_alive
from kvcap.records.position import TrainPosition
from kvcap.records.run import (
    RUN_STATUSES,
    CompareFigures,
    EvalRow,
    RunState,
    RunSummary,
    SampleRow,
    TrainRow,
    best_eval,
    compare_figures,
    is_better,
    select_best,
)
from kvcap.records.formats import FORMATS, OutputFormat, format_names, subtitle_formats
from kvcap.records.metrics import METRIC_SPECS, MetricSpec, ReportRow, labels, metric_names, metric_spec
from kvcap.records.targets import SEED_TARGETS, Targets, passes_target, seed_targets

__all__ = [
    "FORMATS", "METRIC_SPECS", "MetricSpec", "OutputFormat", "ReportRow", "format_names", "labels",
    "metric_names", "metric_spec", "seed_targets", "subtitle_formats",
    "CAPTION_STATUSES", "FLAG_COMPRESSION_ABOVE", "FLAG_LOGPROB_BELOW", "JOB_STATUSES", "RUN_STATUSES",
    "STALE_AFTER_S", "SEED_TARGETS",
    "CaptionRecord", "CompareFigures", "EvalRow", "JobState", "PidAlive", "RunState", "RunSummary",
    "SampleRow", "Targets", "TrainPosition", "TrainRow", "best_eval", "compare_figures", "dumps_jsonl", "is_better",
    "compression_ratio", "suspect_reason",
    "iter_jsonl", "latest_per_video", "live_status", "parse_time", "passes_target", "pid_alive", "read_json_object", "read_jsonl",
    "select_best", "utc_now",
]
