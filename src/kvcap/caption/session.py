"""A caption session: the checkpoint loaded on this machine, with what it runs with decided here.

    session = CaptionSession.open(cfg)           # cfg: the resolved kvcap Config
    print(session.describe())                    # quantization, batch and why; engine; decode workers
    options = session.caption_options(formats=..., shard=..., overwrite=...)
    for result in caption_folder(paths, session.captioner, out_dir, options): ...

`open` resolves the device, picks the LLM quantization (`auto`: from the free memory, the LLM's
config.json and the prompt length the checkpoint implies), loads the captioner, layers the
checkpoint's own settings under what the user set, applies an explicit prompt, and probes the
batch size on a GPU (`auto`). Nothing here knows about Click: a worker process (one per GPU)
opens its own session from the same config, and the choices are made on its own card.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kvcap.caption import autotune
from kvcap.caption.autotune import Choice
from kvcap.caption.plan import CaptionOptions, checkpoint_id
from kvcap.config import with_checkpoint


@dataclass
class CaptionSession:
    """A loaded captioner and the settings a caption job runs with (all `auto` values resolved)."""

    cfg: Any
    """The Config: the checkpoint's settings layered in; caption.quantization/batch_size/workers resolved."""
    captioner: Any
    checkpoint_id: str
    """Recorded in each captions.jsonl record: the checkpoint's resolved folder, or `demo`."""
    device: str
    quantization: Choice
    batch: Choice
    threads_per_decoder: int
    """FFmpeg threads each decode worker uses (kvcap.video.threads.plan)."""

    @classmethod
    def open(cls, cfg: Any) -> "CaptionSession":
        """Load `cfg.caption.checkpoint` on `cfg.caption.device`, choosing what `auto` leaves open."""
        from kvcap.model.vision import resolve_device
        from kvcap.video.threads import plan

        device = str(resolve_device(cfg.caption.device))
        prompt = cfg.model.prompt if cfg.is_explicit("model.prompt") else None
        quant = autotune.decide_quantization(
            cfg.caption.quantization, cfg.caption.checkpoint, device, cfg.caption.batch_size,
            max_new_tokens=cfg.generation.max_new_tokens, prompt=prompt)
        captioner = load_captioner(cfg.caption.checkpoint, device, quant.value)
        cfg = with_checkpoint(cfg, captioner.checkpoint_settings())  # the batch probe decodes with these
        if prompt is not None:
            use_prompt(captioner, prompt)
        batch = _choose_batch(captioner, cfg, device)
        workers, per_decoder = plan(cfg.caption.workers)
        caption = dataclasses.replace(cfg.caption, quantization=quant.value, batch_size=batch.value, workers=workers)
        return cls(cfg=dataclasses.replace(cfg, caption=caption), captioner=captioner,
                   checkpoint_id=checkpoint_id(cfg.caption.checkpoint), device=device, quantization=quant,
                   batch=batch, threads_per_decoder=per_decoder)

    @property
    def batch_size(self) -> int:
        return int(self.batch.value)

    def describe(self) -> str:
        """One line: what was chosen and why."""
        c = self.cfg.caption
        return (f"quantization {self.quantization.value} ({self.quantization.reason}); batch {self.batch.value} "
                f"({self.batch.reason}); engine {self.cfg.generation.engine}; {c.workers} decode workers x "
                f"{self.threads_per_decoder} threads")

    def caption_options(self, **job: Any) -> CaptionOptions:
        """CaptionOptions from this session's settings (CaptionOptions.from_config, with the batch
        size, workers and generation settings decided here); `job` sets the job's own fields
        (formats, frames, shard, overwrite, ...) and wins over them."""
        decided = dict(batch_size=self.batch_size,
                       job_extra={"generation": generation_used(self.captioner, self.cfg.generation)})
        return CaptionOptions.from_config(self.cfg, **{**decided, **job})

    def stats(self, pipeline: Any) -> dict[str, Any]:
        """Where the time went (a PipelineStats after the job) and what the job ran with."""
        decoder = getattr(self.captioner, "_decoder", None)
        c = self.cfg.caption
        return {"pipeline": dataclasses.asdict(pipeline), "engine": getattr(self.captioner, "last_engine", None),
                "decoder": dict(decoder.timings) if decoder is not None else None,
                "batch_size": c.batch_size, "quantization": c.quantization, "workers": c.workers}

    def write_stats(self, results: Iterator[Any], pipeline: Any, path: str | Path) -> Iterator[Any]:
        """Pass `results` through, then write `stats(pipeline)` as JSON to `path`."""
        yield from results
        Path(path).write_text(json.dumps(self.stats(pipeline), indent=2), encoding="utf-8")


def _choose_batch(captioner: Any, cfg: Any, device: str) -> Choice:
    """`auto` on a GPU: the largest batch a real probe fits; otherwise as asked (CPU: CPU_BATCH)."""
    requested = cfg.caption.batch_size
    free = autotune.free_cuda_bytes(device)
    probe = autotune.probe_batches(captioner, cfg.generation) if free is not None and requested == autotune.AUTO else None
    batch = autotune.choose_batch(requested, device=device, probe=probe, free_bytes=free)
    autotune.empty_cuda_cache()
    return batch


def load_captioner(checkpoint: str, device: str, quantization: str = "checkpoint") -> Any:
    """The checkpoint's Captioner on `device`, its LLM loaded as `quantization` (`checkpoint` = as trained)."""
    from kvcap.config import quantization_override
    from kvcap.model.captioner import Captioner

    return Captioner.from_checkpoint(checkpoint, device=device, quantization=quantization_override(quantization))


def use_prompt(captioner: Any, prompt: str) -> None:
    """Caption with `prompt` instead of the checkpoint's instruction (`--prompt`, model.prompt)."""
    from kvcap.model.prompt import PromptError, build_prompt_format

    try:
        captioner.prompt = build_prompt_format(captioner.tokenizer, prompt)
    except PromptError as exc:
        raise PromptError(f"model.prompt: {exc}") from None
    captioner.spec = dataclasses.replace(captioner.spec, prompt=prompt)


def generation_used(captioner: Any, generation: Any) -> dict[str, Any]:
    """The generation settings this job runs with (layered by kvcap.model.generation.resolve, as
    the captioner layers them) and the prompt, for job.json and the TUI."""
    from kvcap.model.generation import resolve

    used = resolve(getattr(captioner, "generation_defaults", None), generation)
    prompt = getattr(getattr(captioner, "spec", None), "prompt", None)
    if isinstance(prompt, str):
        used["prompt"] = prompt
    return used
