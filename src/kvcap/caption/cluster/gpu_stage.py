"""The Ray GPU stage: an actor pool, one captioner loaded per actor, fed batches of decoded
windows by Ray Data; each actor decides `auto` quantization and batch size on its own card.

The model step is the local engine's own (kvcap.caption.batching.caption_clips), so the texts
are the same. Rows that carry no frames (a failed video, decided in the decode stage) pass
through untouched; after the driver's first Ctrl-C, windows still queued come back `dropped`
(only the batch an actor is in finishes). An actor that cannot load the checkpoint (a path its node cannot read) turns
every row it gets into an error naming its node and the path, instead of dying at start.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from kvcap.caption.cluster.decode_stage import node_name, note_pid, stopped
from kvcap.errors import one_line

# what flows on to the driver: the decode row without its frames, plus the text and who made it
PASS_COLUMNS = ("key", "path", "index", "count", "start", "end", "times", "ntimes", "duration", "fps", "decode_s",
                "node")


def _checkpoint_unreadable(checkpoint: str) -> bool:
    """Whether the checkpoint is a path this node cannot read (`demo` and hub ids are not paths)."""
    if checkpoint == "demo" or not (os.path.isabs(checkpoint) or os.sep in checkpoint):
        return False
    return not os.access(checkpoint, os.R_OK)


class CaptionerActor:
    """Ray Data `map_batches` callable class: loads the captioner once, then captions batches."""

    def __init__(self, cfg: Any, stop: Any = None):
        from kvcap.caption.autotune import BatchLimit, empty_cuda_cache
        from kvcap.caption.cluster.worker import describe_worker, open_session

        note_pid("caption")
        self.stop = stop  # the driver's Ctrl-C flag (decode_stage.StopFlag)
        self.worker = f"{node_name()}:{os.getpid()}"
        self.error: str | None = None
        self.unreadable = False
        self.items = 0
        self.info: dict[str, Any] = {"worker": self.worker, "node": node_name()}
        try:
            self.session = open_session(cfg)
        except Exception as exc:  # noqa: BLE001 - reported on every row this actor is given
            checkpoint = str(cfg.caption.checkpoint)
            self.unreadable = _checkpoint_unreadable(checkpoint)
            self.error = (f"{checkpoint}: cannot read the checkpoint on node {node_name()}" if self.unreadable
                          else f"checkpoint {checkpoint} failed to load on node {node_name()}: {one_line(exc)}")
            self.info["error"] = self.error
            return
        self.info.update(describe_worker(self.session))
        self.limit = BatchLimit(self.session.batch_size, on_oom=empty_cuda_cache)

    def _caption(self, frames: Any) -> tuple[list[tuple[str, Any]], str | None]:
        """(text, confidence.Score or None) for frames (B, T, S, S, 3) uint8 in chunks of this
        worker's batch size."""
        from kvcap.caption.batching import caption_clips_scored

        texts: list[tuple[str, Any]] = []
        try:
            while len(texts) < len(frames):
                part = frames[len(texts): len(texts) + self.limit.size]
                texts += caption_clips_scored(self.session.captioner, self.session.cfg.generation, self.limit, part)
                self._note_engine()
        except Exception as exc:  # noqa: BLE001 - a failed batch is its clips' error records
            return [], f"captioning failed on {self.worker}: {one_line(exc)}"
        return texts, None

    def _note_engine(self) -> None:
        """The decode engine that ran here (job.json `engine`), and a failed CUDA graph capture."""
        engine = getattr(self.session.captioner, "last_engine", None)
        engines = self.info.setdefault("engines", [])
        if engine and engine not in engines:
            engines.append(engine)
        error = getattr(self.session.captioner, "capture_error", None)
        if error:
            self.info["capture_error"] = error

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        rows = len(batch["key"])
        texts = np.array([""] * rows, dtype=object)
        avg_logprob = np.full(rows, np.nan, dtype=np.float64)  # the window's confidence (nan: not reported)
        tokens = np.zeros(rows, dtype=np.int64)
        errors = np.array([str(e) for e in batch["error"]], dtype=object)
        unreadable = np.array(batch["unreadable"], dtype=bool)
        model_s = np.zeros(rows, dtype=np.float64)
        todo = np.flatnonzero(np.asarray(batch["has_frames"], dtype=bool))
        dropped = np.zeros(rows, dtype=bool)
        if len(todo) and stopped(self.stop):  # after the first Ctrl-C: queued windows wait for the rerun
            dropped[todo] = True
        elif len(todo) and self.error is not None:
            errors[todo], unreadable[todo] = self.error, self.unreadable
        elif len(todo):
            t0 = time.perf_counter()
            got, error = self._caption(np.asarray(batch["frames"])[todo])  # (B, T, S, S, 3)
            if error is not None:
                errors[todo] = error
            else:
                texts[todo] = [text for text, _ in got]
                for row, (_, score) in zip(todo, got):
                    if score is not None and score.avg_logprob is not None:
                        avg_logprob[row], tokens[row] = score.avg_logprob, score.tokens
            model_s[todo] = (time.perf_counter() - t0) / len(todo)
            self.items += len(todo)
        self.info["items"] = self.items
        out = {name: batch[name] for name in PASS_COLUMNS}
        out.update(text=texts, avg_logprob=avg_logprob, tokens=tokens, error=errors, unreadable=unreadable, model_s=model_s, dropped=dropped,
                   worker=np.array([self.worker] * rows, dtype=object),
                   worker_info=np.array([json.dumps(self.info)] * rows, dtype=object))
        return out
