"""`kvcap data synth --seed` gives the same bytes in any process state and under parallel load.

x264's AVX-512 macroblock-tree code read heap memory it never wrote, so a clip's bytes followed
what the process's heap held before the encode (see `encode_mp4`). A fresh process hides that
(its heap pages start zeroed): the first test dirties the heap between encodes on purpose.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from kvcap.data.synth import clip_spec, encode_mp4
from kvcap.data.synth.renderer import render_frames

SYNTH_ARGS = ["--count", "6", "--seed", "5", "--size", "32", "--seconds", "1", "--fps", "8", "--quiet"]


def _dirty_heap(rng: np.random.Generator) -> None:
    """malloc blocks of the sizes x264 uses, fill them with a non-zero byte, free them in a
    shuffled order: the next encode's buffers come back holding that garbage."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for size in rng.choice([1 << 12, 1 << 16, 1 << 18, 1 << 20, 3 << 20], size=200):
        block = libc.malloc(int(size))
        ctypes.memset(block, int(rng.integers(1, 255)), int(size))
        blocks.append(block)
    for i in rng.permutation(len(blocks)):
        libc.free(blocks[i])


def test_encoding_ignores_what_the_heap_held(tmp_path):
    # The clips that varied most before the fix (14 and 6 different files out of 60 encodes).
    clips = {index: render_frames(clip_spec(5, index)[0], 32, 8) for index in (0, 2)}
    rng = np.random.default_rng(0)
    digests: dict[int, set[str]] = {index: set() for index in clips}
    for n in range(20):
        for index, frames in clips.items():
            _dirty_heap(rng)
            out = tmp_path / f"{index}-{n}.mp4"
            encode_mp4(out, frames, fps=8)
            digests[index].add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert {index: len(d) for index, d in digests.items()} == {0: 1, 2: 1}


def _synth(out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.Popen(
        [sys.executable, "-m", "kvcap.cli", "data", "synth", "--out", str(out), *SYNTH_ARGS],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_three_synth_runs_two_at_once_are_byte_identical(tmp_path):
    outs = [tmp_path / name for name in ("a", "b", "c")]
    together = [_synth(outs[0]), _synth(outs[1])]  # two processes at once, competing for the cores
    for proc in together:
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, output.decode(errors="replace")
    alone = _synth(outs[2])
    output = alone.communicate(timeout=120)[0]
    assert alone.returncode == 0, output.decode(errors="replace")
    trees = [_tree(out) for out in outs]
    assert len(trees[0]) == 7 and "manifest.jsonl" in trees[0]  # 6 clips + the manifest
    assert trees[0] == trees[1] == trees[2]
