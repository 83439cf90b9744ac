"""Is a configured model id loadable here, without asking the hub twice? Asked before a command
makes folders or loads anything, so that no hub means one line, not 50 s of retries and a
traceback.

    require_loadable("Qwen/Qwen3-8B", "model.llm")   # None, or HubUnavailable naming the setting
    loadable_source("tiny:qwen3", "model.llm")       # the same check, then what from_pretrained loads

A `tiny:` id, a local folder and a hub id already in the hub cache are loadable. Any other hub id
needs the hub: with `HF_HUB_OFFLINE=1` that is known at once; otherwise one connection to the
hub's host (a few seconds at most, no retries) tells. Torch-free; huggingface_hub is imported only
for a hub id.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from kvcap.errors import KvcapError
from kvcap.model.tiny import is_tiny, resolve_model_id

CONNECT_TIMEOUT_S = 3.0


class HubUnavailable(KvcapError, OSError):
    """A hub model id that cannot be loaded: not a local folder, not cached, and no hub."""


def require_loadable(model_id: str, setting: str, fix: str | None = None) -> None:
    """Raise HubUnavailable (one line naming `setting`, then `fix`: what to do) when `model_id`
    cannot be loaded here. The default `fix` is for a setting the user can change."""
    model_id = str(model_id)
    if is_tiny(model_id) or Path(model_id).expanduser().is_dir():
        return
    if Path(model_id).is_absolute() or model_id.startswith((".", "~")) or model_id.count("/") > 1:
        raise HubUnavailable(f"{setting} = {model_id}: no such folder (a local model folder, or a hub id "
                             f"like Org/Name)")
    if _in_hub_cache(model_id):
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why = "the hub is off (HF_HUB_OFFLINE=1)"
    elif not reachable(constants.ENDPOINT):
        why = f"the hub ({constants.ENDPOINT}) cannot be reached"
    else:
        return
    fix = fix or (f"set {setting} to a local folder holding the model (--set {setting}=/path/to/model, "
                  f"or in kvcap.toml), or download it first where the hub is reachable (hf download {model_id})")
    raise HubUnavailable(f"{setting} = {model_id}: not a local folder, not in the hub cache, and {why}; {fix}")


def loadable_source(model_id: str, setting: str, fix: str | None = None) -> str:
    """What `from_pretrained` loads for `model_id`, once require_loadable() has passed: a `tiny:`
    model's folder (written on first use), else the folder or hub id itself."""
    require_loadable(model_id, setting, fix)
    return resolve_model_id(model_id)


def _in_hub_cache(model_id: str) -> bool:
    """The model's config.json is in the local hub cache (a download made earlier)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """One TCP connection to the hub's host: no HTTP retries, no download."""
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True  # only the HTTP client knows the way through a proxy: let it try
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
