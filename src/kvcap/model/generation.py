"""What a generate call runs with, decided in one place, and what each engine is given.

    settings = resolve(checkpoint_defaults, gen, **overrides)
        kvcap.config.GenerationConfig's typed defaults (the one place they are written)
        < the checkpoint's own generation settings < `gen` (a GenerationConfig or a dict) < overrides
    hf_config(settings, stop_ids, pad_id)       -> transformers.GenerationConfig (the `hf` engine)
    greedy_settings(settings, stop_ids, pad_id) -> kvcap.model.decode.GreedySettings (the static loop)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence


def as_dict(gen: Any) -> dict[str, Any]:
    """A GenerationConfig (or a dict, or None) as a plain dict of the keys it sets."""
    if gen is None:
        return {}
    if dataclasses.is_dataclass(gen):
        return dataclasses.asdict(gen)
    return dict(gen)


def resolve(checkpoint_defaults: dict[str, Any] | None, gen: Any = None, **overrides: Any) -> dict[str, Any]:
    """Every generation setting, each from the highest layer that gives it (see the module docstring)."""
    from kvcap.config import GenerationConfig

    return {**dataclasses.asdict(GenerationConfig()), **dict(checkpoint_defaults or {}), **as_dict(gen), **overrides}


def hf_config(settings: dict[str, Any], stop_ids: Sequence[int], pad_id: int | None):
    """transformers' GenerationConfig for `settings` (sampling options only when sampling)."""
    from transformers import GenerationConfig as HFGenerationConfig

    do_sample = bool(settings["do_sample"])
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(settings["max_new_tokens"]),
        "num_beams": int(settings["num_beams"]),
        "do_sample": do_sample,
        "repetition_penalty": float(settings["repetition_penalty"]),
        "no_repeat_ngram_size": int(settings["no_repeat_ngram_size"]),
        "min_new_tokens": int(settings["min_new_tokens"]) or None,
        "eos_token_id": list(stop_ids),
        "pad_token_id": pad_id,
        "use_cache": True,
    }
    if do_sample:
        kwargs.update(temperature=float(settings["temperature"]), top_p=float(settings["top_p"]), top_k=0)
    return HFGenerationConfig(**kwargs)


def greedy_settings(settings: dict[str, Any], stop_ids: Sequence[int], pad_id: int):
    """The static loop's GreedySettings for `settings` (the caller checked the loop supports them)."""
    from kvcap.model.decode import GreedySettings

    return GreedySettings(
        max_new_tokens=int(settings["max_new_tokens"]),
        min_new_tokens=int(settings["min_new_tokens"]),
        repetition_penalty=float(settings["repetition_penalty"]),
        stop_ids=tuple(stop_ids),
        pad_id=int(pad_id),
    )
