"""`kvcap caption --cluster ray`: the local engine's plan and sink around Ray Data stages.

    driver: plan (list, skip done, shard: kvcap.caption.plan)
      ─► CPU decode tasks of a few videos each (decode_stage.py: the local sampler, scenes in one pass)
      ─► actor pool, one captioner per GPU (gpu_stage.py: the local model step)
      ─► rows back to the driver (assemble.py) ─► the local sink: subtitles, ledger, job.json

Frames go from decode tasks to actors through Ray's object store, never through the driver,
which receives only texts. Records are written in completion order; the ledger is compacted
into input order when the job closes (as locally), so a killed driver leaves exactly what a
killed local job leaves and a rerun resumes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from kvcap.caption.cluster.assemble import Assembler
from kvcap.caption.cluster.connect import Cluster
from kvcap.caption.plan import CaptionOptions, JobPlan, as_paths, plan_job
from kvcap.caption.results import CaptionResult
from kvcap.errors import one_line

AUTO_ROWS = 16  # windows per actor call when the batch size is `auto` (each actor cuts its own batches)
UNREADABLE_EVERYWHERE = "videos and checkpoints must be on a file system every node mounts"


@dataclass
class StageShape:
    """What the stages need that the local engine reads off a loaded captioner."""

    frames: int
    size: int  # S


def stage_shape(checkpoint: str, frames: int | None) -> StageShape:
    """Frames and image size from the checkpoint's kvcap.json: the driver loads no model."""
    from kvcap.model.checkpoint import CheckpointError, read_spec

    spec = read_spec(checkpoint)
    size = (spec.get("vision") or {}).get("image_size")
    if not isinstance(size, int):
        raise CheckpointError(f"{checkpoint}: kvcap.json has no vision.image_size; --cluster ray needs it "
                              "(save the checkpoint again with this kvcap)")
    return StageShape(frames=int(frames or spec["frames"]), size=size)


class RayCaptionJob:
    """One caption job on a Ray cluster; `run()` yields one CaptionResult per video as it completes."""

    def __init__(self, paths: list[Any], cfg: Any, plan: JobPlan, options: CaptionOptions, cluster: Cluster, *,
                 progress: Callable | None = None, stop: threading.Event | None = None):
        self.paths, self.cfg, self.plan, self.options, self.cluster = paths, cfg, plan, options, cluster
        self.progress, self.stop = progress, stop or threading.Event()
        self.assembler = Assembler(plan.todo)
        self.shape = stage_shape(cfg.caption.checkpoint, options.frames)  # read once, on the driver, at plan time

    @classmethod
    def create(cls, paths: Any, cfg: Any, out_dir: str | Path | None, options: CaptionOptions, cluster: Cluster, *,
               skipped: list[Path] | None = None, progress: Callable | None = None,
               stop: threading.Event | None = None) -> "RayCaptionJob":
        paths = as_paths(paths)
        plan = plan_job(paths, out_dir, options, skipped if skipped is not None else [])
        return cls(paths, cfg, plan, options, cluster, progress=progress, stop=stop)

    @property
    def workers(self) -> list[dict[str, Any]]:
        return list(self.assembler.workers.values())

    @property
    def all_unreadable(self) -> bool:
        """Every clip captioned in this run failed because a node could not read a path."""
        return bool(self.plan.todo) and len(self.assembler.unreadable) == len(self.plan.todo)

    def run(self) -> Iterator[CaptionResult]:
        from kvcap.caption.sink import CaptionSink

        plan, o = self.plan, self.options
        extra = {**(o.job_extra or {}), "cluster": "ray", "ray": self.cluster.describe(), "workers": []}
        sink = CaptionSink.for_job(plan, o, self.paths, progress=self.progress, job_extra=extra)
        status, error = "interrupted", None
        try:
            for video in plan.done_before:
                yield sink.skipped(video, plan.previous[video.key])
            for state in self._stream(sink):
                yield sink.put(state)
            status = "interrupted" if self.stop.is_set() else "finished"
        except GeneratorExit:
            raise
        except BaseException as exc:
            status, error = ("interrupted", None) if isinstance(exc, KeyboardInterrupt) else ("failed", one_line(exc))
            raise
        finally:
            sink.close(plan.order, status, error)

    def _stream(self, sink: Any) -> Iterator[Any]:
        """Finished videos, as the cluster completes them; then the ones it gave up on."""
        if not self.plan.todo:
            return
        from kvcap.caption.cluster.stages import build_dataset, stop_flag

        flag = stop_flag()
        watcher = threading.Thread(target=self._forward_stop, args=(flag,), daemon=True, name="kvcap-ray-stop")
        watcher.start()
        try:
            dataset = build_dataset(self.plan.todo, self.cfg, self.options, self.shape.size, self.cluster, flag)
            rows = iter(dataset.iter_rows())
            for row in rows:
                state = self.assembler.add(row)
                if self.assembler.workers:
                    self._note_workers(sink)
                if state is not None:
                    yield state
        finally:
            self._done = True
            closing = getattr(locals().get("rows"), "close", None)
            if closing is not None:
                closing()  # a second Ctrl-C: stop Ray Data's executor before the cluster goes away
        if self.stop.is_set():
            return  # what was not decoded stays undone for the rerun
        retries = int(self.cfg.ray.retries)
        for video in self.assembler.missing():
            yield self.assembler.lost(video, f"lost on the Ray cluster after {retries} retries "
                                             "(a decode task or captioner process kept dying)")

    _done = False

    def _note_workers(self, sink: Any) -> None:
        """job.json: each worker's choices, the engines that ran, and the generation settings as
        the first worker loaded them."""
        workers = self.workers
        engines = list(dict.fromkeys(e for w in workers for e in w.get("engines", [])))
        sink.note_engine(", ".join(engines) or None, next((w["capture_error"] for w in workers
                                                            if w.get("capture_error")), None))
        if sink.job is None:
            return
        extra = sink.job.extra
        extra["workers"] = workers
        if not extra.get("generation"):
            extra["generation"] = next((w["generation"] for w in workers if w.get("generation")), {})

    def _forward_stop(self, flag: Any) -> None:
        """First Ctrl-C: tell the decode tasks to take no new video (the ones in flight finish)."""
        while not self._done:
            if self.stop.wait(0.2):
                flag.set.remote()
                return


def describe_workers(workers: list[dict[str, Any]]) -> list[str]:
    """The end-of-run lines: what each GPU worker chose on its own card."""
    lines = []
    for w in sorted(workers, key=lambda w: w["worker"]):
        if "error" in w:
            lines.append(f"  {w['worker']}: {w['error']}")
            continue
        lines.append(f"  {w['worker']} ({w.get('device')}): quantization {w.get('quantization')} "
                     f"({w.get('quantization_reason')}); batch {w.get('batch_size')} ({w.get('batch_reason')}); "
                     f"{w.get('items', 0)} windows")
    return lines

