"""A GPU worker's caption session: the checkpoint loaded on the worker's own device, `auto`
quantization and batch size decided there (never on the driver, which may have no GPU).

The steps are the local command's (kvcap.caption.autotune): device, quantization, load, the
checkpoint's settings under what the user set, an explicit prompt, the batch probe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PROMPT_TOKENS_HINT = 4608 + 64  # as `kvcap caption`: the largest projector's visual tokens + template


@dataclass
class WorkerSession:
    """A loaded captioner on this worker and what it runs with."""

    cfg: Any  # the Config with the checkpoint's settings layered in
    captioner: Any
    device: str
    quantization: Any  # autotune.Choice
    batch: Any  # autotune.Choice

    @property
    def batch_size(self) -> int:
        return int(self.batch.value)

    @property
    def generation(self) -> Any:
        return self.cfg.generation

    def describe_worker(self) -> dict[str, Any]:
        """This worker's entry in job.json's `workers` (and the end-of-run summary)."""
        from kvcap.commands.caption import generation_used

        return {"device": self.device, "quantization": self.quantization.value,
                "quantization_reason": self.quantization.reason, "batch_size": self.batch_size,
                "batch_reason": self.batch.reason, "generation": generation_used(self.captioner, self.cfg.generation)}


def open_session(cfg: Any) -> WorkerSession:
    """Load `cfg.caption.checkpoint` on this worker, choosing what `auto` leaves open."""
    from kvcap.caption import autotune
    from kvcap.commands.caption import _load_captioner, _use_prompt
    from kvcap.model.vision import resolve_device

    device = str(resolve_device(cfg.caption.device))
    quant = autotune.decide_quantization(
        cfg.caption.quantization, cfg.caption.checkpoint, device, cfg.caption.batch_size,
        prompt_tokens=PROMPT_TOKENS_HINT, max_new_tokens=cfg.generation.max_new_tokens)
    captioner, _, device = _load_captioner(cfg.caption.checkpoint, device, quant.value)
    cfg = cfg.with_checkpoint(captioner.checkpoint_settings())  # the batch probe decodes with these
    if cfg.is_explicit("model.prompt"):
        _use_prompt(captioner, cfg.model.prompt)
    free = autotune.free_cuda_bytes(device)
    requested = cfg.caption.batch_size
    probe = autotune.probe_batches(captioner, cfg.generation) if free is not None and requested == "auto" else None
    batch = autotune.choose_batch(requested, device=device, probe=probe, free_bytes=free)
    autotune.empty_cuda_cache()
    cfg = dataclasses.replace(cfg, caption=dataclasses.replace(cfg.caption, quantization=quant.value,
                                                               batch_size=batch.value))
    return WorkerSession(cfg=cfg, captioner=captioner, device=device, quantization=quant, batch=batch)
