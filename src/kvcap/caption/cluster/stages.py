"""The Ray Data dataset of a job: input rows -> decode tasks (CPU) -> captioner actor pool.

Sizes come from the cluster and `[ray]`: decode tasks take several videos and `decode_cpus`
CPUs each, and are retried `retries` times when their process dies; the pool has `gpu_workers` actors (`auto` = every GPU
/ `gpus_per_worker`; one actor on a CPU when the cluster has no GPU), restarted when they die,
each call retried `retries` times. A block that fails all its retries is dropped from the
stream (`max_errored_blocks`), and the driver writes its videos as error records.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import warnings
from typing import Any

from kvcap.caption.inputs import VideoInput

CPU_ACTOR_CPUS = 1  # a captioner actor on a CPU-only cluster: torch runs on this many threads
# Decode tasks take several videos each: Ray's own cost per task (~20-30 ms of a busy core) is a
# large share of a short clip's decode (bench/fleet.py: 256 clips took 23.8 s in one task each,
# 16.9 s in 16 tasks of 16). Enough tasks remain for every decode slot to start at once and
# for a killed task to cost little when it is retried.
VIDEOS_PER_TASK = 16
TASKS_PER_SLOT = 4


def decode_tasks(videos: int, slots: int) -> int:
    """How many decode tasks (Ray Data input blocks) `videos` are split into, for a cluster that
    runs `slots` decode tasks at once: at most VIDEOS_PER_TASK videos a task, and at least
    TASKS_PER_SLOT tasks a slot while there are videos to give them."""
    return max(1, min(videos, max(TASKS_PER_SLOT * slots, math.ceil(videos / VIDEOS_PER_TASK))))


def stop_flag() -> Any:
    """The driver's Ctrl-C flag, a tiny actor the decode tasks read."""
    import ray

    from kvcap.caption.cluster.decode_stage import StopFlag

    return ray.remote(num_cpus=0)(StopFlag).remote()


def actor_count(cfg: Any, cluster: Any, device: str) -> tuple[int, float]:
    """(actors, GPUs per actor): `auto` = every GPU in the cluster; one CPU actor without GPUs."""
    gpus = cluster.gpus if device != "cpu" else 0.0
    per = float(cfg.ray.gpus_per_worker) if gpus > 0 else 0.0
    if cfg.ray.gpu_workers != "auto":
        return int(cfg.ray.gpu_workers), per
    return (max(1, int(gpus // per)) if per > 0 else 1), per


def worker_config(cfg: Any) -> Any:
    """The config the actors load with: the checkpoint as an absolute path (workers' cwd differs)."""
    from pathlib import Path

    checkpoint = cfg.caption.checkpoint
    if checkpoint != "demo" and Path(checkpoint).exists():
        checkpoint = str(Path(checkpoint).resolve())
    return dataclasses.replace(cfg, caption=dataclasses.replace(cfg.caption, checkpoint=checkpoint))


def quiet_data_context(ray: Any) -> Any:
    """Ray Data as kvcap runs it: failed blocks become error records, no bars or log lines of its own
    on the terminal (RAY_DATA_LOG_LEVEL, when the user sets it, still wins)."""
    level = os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")  # read each time Ray Data configures logging
    logging.getLogger("ray.data").setLevel(level)
    context = ray.data.DataContext.get_current()
    context.max_errored_blocks = -1  # a clip that fails all retries is an error record, not a dead job
    context.enable_progress_bars = False  # kvcap draws its own
    context.print_on_execution_start = False
    return context


def decode_dataset(videos: list[VideoInput], options: Any, *, size: int, decode_cpus: float, retries: int,
                   flag: Any, cpus: float) -> Any:
    """Input rows -> the CPU decode stage on a cluster of `cpus` CPUs: decode_tasks() tasks of
    several videos (each task retried `retries` times when its process dies); `options.frames`
    frames of `size` pixels per window."""
    import ray

    from kvcap.caption.cluster.decode_stage import decode_video

    quiet_data_context(ray)
    items = [{"key": v.key, "path": str(v.path)} for v in videos]
    slots = max(1, int(cpus // decode_cpus))
    dataset = ray.data.from_items(items, override_num_blocks=decode_tasks(len(items), slots))
    with warnings.catch_warnings():  # retries are still passed as Ray remote args (deprecated in 2.60, no other way)
        warnings.simplefilter("ignore")
        return dataset.flat_map(
            decode_video, fn_kwargs=dict(frames=int(options.frames), size=size, backend=options.backend,
                                         segment=options.segment, stop=flag,
                                         decoder_threads=max(1, int(decode_cpus))),
            num_cpus=float(decode_cpus), max_retries=retries, retry_exceptions=False,
        )


def build_dataset(videos: list[VideoInput], cfg: Any, options: Any, size: int, cluster: Any, flag: Any) -> Any:
    """The job's lazy dataset; iterating it runs the stages, streaming."""
    import ray

    from kvcap.caption.cluster.gpu_stage import CaptionerActor

    retries = int(cfg.ray.retries)
    dataset = decode_dataset(videos, options, size=size, decode_cpus=cfg.ray.decode_cpus, retries=retries, flag=flag,
                             cpus=cluster.cpus)
    actors, gpus = actor_count(cfg, cluster, str(cfg.caption.device))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dataset.map_batches(
            CaptionerActor, fn_constructor_kwargs={"cfg": worker_config(cfg), "stop": flag}, batch_size=options.batch_size,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus or None,
            num_cpus=CPU_ACTOR_CPUS, max_restarts=-1, max_task_retries=retries,
        )
