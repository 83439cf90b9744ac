"""Shared fixtures live in tests/fixtures/<area>.py, one module per area."""

import os
import tempfile

# Tests build tiny models from configs; nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# kvcap's cache root (tiny backbones, token cache): a fresh one per test session, never the
# user's ~/.cache/kvcap, so every run starts from the state a clean machine has.
os.environ["KVCAP_HOME"] = tempfile.mkdtemp(prefix="kvcap-test-home-")

import kvcap  # noqa: E402,F401  (sets OMP_WAIT_POLICY before any test imports torch)

pytest_plugins = ["fixtures.video", "fixtures.data", "fixtures.model"]
