"""A GPU worker's caption session: the local command's CaptionSession opened on the worker,
so `auto` quantization and batch size are decided on the worker's own card (never on the
driver, which may have no GPU); plus what the worker reports to the driver."""

from __future__ import annotations

from typing import Any


def open_session(cfg: Any) -> Any:
    """Load `cfg.caption.checkpoint` on this worker (kvcap.caption.session.CaptionSession)."""
    from kvcap.caption.session import CaptionSession

    return CaptionSession.open(cfg)


def describe_worker(session: Any) -> dict[str, Any]:
    """This worker's entry in job.json's `workers` (and the end-of-run summary)."""
    from kvcap.caption.session import generation_used

    return {"device": session.device, "quantization": session.quantization.value,
            "quantization_reason": session.quantization.reason, "batch_size": session.batch_size,
            "batch_reason": session.batch.reason, "generation": generation_used(session.captioner, session.cfg.generation)}
