"""`kvcap data ...`: datasets (synthetic scenes, AI-Hub import)."""

from __future__ import annotations

import click

from kvcap.commands.lazy import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy_commands={
        "synth": "kvcap.commands.data_synth:synth",
        "import-aihub": "kvcap.commands.data_aihub:import_aihub",
    },
)
def data() -> None:
    """Make or import datasets (manifest JSONL with a train/val split)."""
