"""The LLM's tokenizer loaded offline, to count caption tokens (`kvcap data import-aihub`'s
stats, kvcap.data.caption_stats). Torch-free: it needs the tokenizer files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvcap.model.tiny import is_tiny, resolve_model_id


def load_tokenizer_offline(model_id: str) -> tuple[Any | None, str]:
    """(tokenizer, "") or (None, one-line reason); never reaches the network."""
    try:
        if is_tiny(model_id):
            path = resolve_model_id(model_id)
        else:
            path = str(Path(model_id).expanduser()) if Path(model_id).expanduser().is_dir() else model_id
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, local_files_only=True), ""
    except Exception as exc:  # noqa: BLE001 - any failure: characters only, with the reason
        # Whole, on one line: the summary table is wide enough (kvcap.console) and a cut hub error
        # ("... Use `repo_type` )") hides what to do.
        text = " ".join(str(exc).split()) or type(exc).__name__
        return None, f"tokenizer of model.llm {model_id} not available offline ({text})"
