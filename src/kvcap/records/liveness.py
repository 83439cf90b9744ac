"""Is a run or caption job that says `running` really running? (state.json, job.json)"""

from __future__ import annotations

import os
import socket
from typing import Callable

STALE_AFTER_S = 600.0
"""A `running` state file not updated for this long belongs to a stuck or killed process."""

PidAlive = Callable[[int], bool]


def process_alive(pid: int, host: str | None = None) -> bool:
    """Whether process `pid` of `host` may still run: False only when it is on this host and gone.

    A process on another host can't be checked from here, so it counts as alive. A killed
    process that its parent has not reaped yet (a zombie) counts as gone.
    """
    if host and host != socket.gethostname():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still has a pid (Linux: state Z)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    return process_alive(pid)


def live_status(status: str, pid: int, host: str, updated: float | None, now: float, *,
                alive: PidAlive = pid_alive, this_host: str | None = None) -> str:
    """`status`, except `stale` for a `running` writer whose process is gone (same host: its
    pid is checked; another host's cannot be) or that stopped updating (`updated`, epoch s)."""
    if status != "running":
        return status
    here = this_host if this_host is not None else socket.gethostname()
    if pid and (not host or host == here) and not alive(pid):
        return "stale"
    if updated is not None and now - updated > STALE_AFTER_S:
        return "stale"
    return "running"
