"""Did `accelerate launch` start the processes it was asked for? Read from the environment only
(torch-free), before a command does any work.

`accelerate launch --cpu --num_processes 2 -m kvcap train ...` starts ONE process: with `--cpu`
accelerate takes its single-process launcher, which only sets MASTER_ADDR/MASTER_PORT for the
processes it never starts, and the run would train as world size 1 without a word. On a machine
without a GPU the form that starts N processes is `--multi_gpu` (torchrun, gloo on CPU; kvcap
builds its Accelerator with cpu=True when there is no GPU).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kvcap.errors import KvcapError

# Set in every process a multi-process launcher starts: torchrun's, and the MPI launchers'.
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
CPU_COMMAND = "accelerate launch --multi_gpu --num_processes N --num_machines 1 --mixed_precision no -m kvcap ..."


class LaunchError(KvcapError):
    """`accelerate launch` was asked for several processes and started one."""


def check_launch(env: Mapping[str, str] = os.environ) -> None:
    """LaunchError when this process is a lone one that `accelerate launch` meant to be several."""
    under_accelerate = "ACCELERATE_USE_CPU" in env  # set by every `accelerate launch`
    meant_several = "MASTER_ADDR" in env or "MASTER_PORT" in env  # set when --num_processes > 1
    if under_accelerate and meant_several and not any(name in env for name in WORLD_SIZE_VARIABLES):
        raise LaunchError(
            "accelerate launch asked for several processes but started 1 (world size 1: its --cpu "
            f"launcher runs a single process); on a machine without a GPU run `{CPU_COMMAND}`"
        )
