"""`kvcap caption PATHS --cluster ray`: the command's Ray branch (kvcap.caption.cluster does the work).

The driver loads no model: it plans, joins (or starts) the cluster, streams results into the
same sink as the local engine, and prints the same progress and summary, plus what each GPU
worker chose. A local cluster kvcap started is stopped at the end, on Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click


def check_ray() -> None:
    """Before anything is loaded: without the extra, one line naming it (exit 2)."""
    from kvcap.caption.cluster.connect import require_ray

    require_ray()


def ray_options(cfg: Any, frames: int | None, shard_spec: Any, overwrite: bool) -> Any:
    """The job's CaptionOptions for the driver, which loads no model: frames from kvcap.json, and
    `batch_size` the windows per actor call (each actor cuts its own batches, `auto` decided there)."""
    from kvcap.caption.cluster.engine import AUTO_ROWS, stage_shape
    from kvcap.caption.plan import CaptionOptions

    c = cfg.caption
    return CaptionOptions.from_config(cfg, frames=stage_shape(c.checkpoint, frames).frames,
                                      batch_size=c.batch_size if isinstance(c.batch_size, int) else AUTO_ROWS,
                                      shard=shard_spec, overwrite=overwrite, workers=0, job_extra={})


def run_ray(paths: Any, cfg: Any, out_dir: Path | None, frames: int | None, shard_spec: Any, overwrite: bool,
            quiet: bool, verbose: bool, review: bool = False) -> None:
    """Run the job on the cluster, print the summary (and write the review page with `review`),
    exit with the local engine's codes."""
    from kvcap.commands.caption_job import finish, run_job, stdout_echo
    from kvcap.commands.progress import ProgressReporter

    check_ray()
    reporter = ProgressReporter(out_dir=out_dir if out_dir is not None else "stdout", checkpoint=cfg.caption.checkpoint,
                                device="ray", batch_size=cfg.caption.batch_size, workers=0, shard=shard_spec,
                                echo=stdout_echo(out_dir is None, quiet), verbose=verbose)
    options = ray_options(cfg, frames, shard_spec, overwrite)
    job, status = _run(paths, cfg, out_dir, options, reporter, run_job)
    finish(status, reporter, to_stdout=out_dir is None, review=(out_dir, cfg) if review else None, notes=summary_lines(job))


def _run(paths: Any, cfg: Any, out_dir: Path | None, options: Any, reporter: Any, run_job: Any) -> tuple[Any, str]:
    """Join (or start) the cluster, run the job, and stop the cluster if kvcap started it."""
    from kvcap.caption.cluster.connect import connect
    from kvcap.caption.cluster.engine import RayCaptionJob

    t0 = time.perf_counter()
    cluster = connect(cfg.ray.address)
    stop = threading.Event()
    try:
        click.echo(f"ray: {cluster.address} ({'started here, ' if cluster.started_local else ''}{cluster.nodes} "
                   f"node(s), {cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs; ready in {time.perf_counter() - t0:.1f} s)",
                   err=True)
        job = RayCaptionJob.create(list(paths), cfg, out_dir, options, cluster, skipped=reporter.not_videos,
                                   progress=reporter, stop=stop)
        status = run_job(job.run, stop, reporter)
    finally:
        with _no_sigint():  # the local cluster kvcap started: stopped on every way out, even mid Ctrl-C
            cluster.close()
    return job, status


@contextlib.contextmanager
def _no_sigint():
    """Ctrl-C ignored while the cluster shuts down (one more press must not leave it half stopped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def summary_lines(job: Any) -> list[str]:
    """After the counts: what each GPU worker chose, and the shared-file-system hint."""
    from kvcap.caption.cluster.engine import UNREADABLE_EVERYWHERE, describe_workers

    lines = ["GPU workers:", *describe_workers(job.workers)] if job.workers else []
    if job.all_unreadable:
        lines.append(UNREADABLE_EVERYWHERE)
    return lines
