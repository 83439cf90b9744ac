"""How many decode workers, and how many FFmpeg threads each decoder gets: sized to the cores.

Each PyAV / decord decoder used to open with FFmpeg's automatic thread count (one thread per
core, frame + slice threading), so W parallel workers ran W x cores threads: on 16 cores, 16
workers ran 256 decoding threads and sampled at half the speed of 4 (issue 17). The plan
keeps workers x threads-per-decoder = the cores this process may use:

    plan(workers="auto")  -> (min(2 x cores, MAX_AUTO_WORKERS), max(1, cores // workers))
    plan(workers=W)       -> (W, max(1, cores // W))          W = 0: decode inline, all cores

Two single-threaded workers a core, because sampling is not all decoding (demuxing, seeking,
scaling, Python between them): on 2 cores, 1080p H.264, 4 workers x 1 thread sampled 4.27
clips/s against 2.72 for 2 x 1 and 2.91 for 4 workers with FFmpeg's automatic threads
(bench/decode_scaling.py, bench/RESULTS.md `## decode scaling`).

`set_decoder_threads` stores the per-decoder count process-wide; the backends read it with
`decoder_threads()` when they open a stream (0 = FFmpeg's own choice, the old behaviour).
"""

from __future__ import annotations

import os

AUTO = "auto"
MAX_AUTO_WORKERS = 16  # cap for `auto` (decoded clips wait in memory for their batch)

_decoder_threads = 0


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where there is one, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def plan(workers: int | str, cores: int | None = None) -> tuple[int, int]:
    """(decode workers, FFmpeg threads per decoder) for `workers` (a count or "auto") on `cores`."""
    cores = available_cores() if cores is None else max(1, int(cores))
    count = min(2 * cores, MAX_AUTO_WORKERS) if workers == AUTO else max(0, int(workers))
    return count, max(1, cores // max(1, count))


def set_decoder_threads(threads: int) -> None:
    """FFmpeg threads every decoder opened from now on uses (0 = FFmpeg decides)."""
    global _decoder_threads
    _decoder_threads = max(0, int(threads))


def decoder_threads() -> int:
    return _decoder_threads
