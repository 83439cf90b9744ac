"""Shared fixtures live in tests/fixtures/<area>.py, one module per area."""

import os

# Tests build tiny models from configs; nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["fixtures.video", "fixtures.data", "fixtures.model"]
