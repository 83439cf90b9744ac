"""The names of the files kvcap writes, defined once: the trainer and the caption writers
write them, the TUI and `kvcap compare` find them by these names.

A training run's directory (kvcap.trainer.rundir):

    config.toml  state.json  metrics.jsonl  samples.jsonl  summary.json  predictions.jsonl
    checkpoints/step-<N>/  best/  stage<N>/

A caption job's output folder (kvcap.caption): captions.jsonl and job.json, or one shard's
captions.shard-<i>-of-<n>.jsonl and job.shard-<i>-of-<n>.json.
"""

from __future__ import annotations

import re

# -- a training run --------------------------------------------------------------------------
RUN_CONFIG = "config.toml"
RUN_STATE = "state.json"
RUN_METRICS = "metrics.jsonl"
RUN_SAMPLES = "samples.jsonl"
RUN_SUMMARY = "summary.json"
RUN_PREDICTIONS = "predictions.jsonl"
RUN_CHECKPOINTS = "checkpoints"
RUN_BEST = "best"

# -- a caption job ---------------------------------------------------------------------------
CAPTIONS = "captions.jsonl"
JOB = "job.json"
SHARD_CAPTIONS_GLOB = "captions.shard-*-of-*.jsonl"
SHARD_JOB_GLOB = "job.shard-*-of-*.json"
SHARD_CAPTIONS_RE = re.compile(r"^captions\.shard-(\d+)-of-(\d+)\.jsonl$")


def shard_part(index: int, count: int) -> str:
    """The part name of shard `index` of `count`: `shard-<i>-of-<n>`."""
    return f"shard-{index}-of-{count}"


def captions_name(part: str | None = None) -> str:
    """captions.jsonl, or a shard's `captions.<part>.jsonl`."""
    return f"captions.{part}.jsonl" if part else CAPTIONS


def job_name(part: str | None = None) -> str:
    """job.json, or a shard's `job.<part>.json`."""
    return f"job.{part}.json" if part else JOB


def job_part(name: str) -> str | None:
    """The part of a shard's job file name (`job.shard-0-of-2.json` -> `shard-0-of-2`), else None."""
    if name.startswith("job.") and name.endswith(".json") and name != JOB:
        return name[len("job."):-len(".json")]
    return None
