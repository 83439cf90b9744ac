"""Write a synthetic dataset: clips/<id>.mp4 (H.264) and manifest.jsonl."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from kvcap.data.manifest import ManifestItem, write_manifest
from kvcap.data.synth.captions import compose_caption
from kvcap.data.synth.renderer import render_frames
from kvcap.data.synth.scenes import SceneSpec, sample_scene

MANIFEST_NAME = "manifest.jsonl"
# libx264 settings that make a clip's bytes a function of its frames (see encode_mp4).
X264_OPTIONS = {"preset": "veryfast", "threads": "1", "mbtree": "0"}
CLIPS_DIR = "clips"


def check_args(count: int, size: int, seconds: float, fps: int, val_fraction: float, references: int = 1) -> None:
    """Raise ValueError (one line, naming the option) for arguments synthesize cannot use."""
    if count < 1:
        raise ValueError(f"count must be at least 1 (got {count})")
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number of pixels >= 16, as H.264 in yuv420p needs (got {size})")
    if fps < 1:
        raise ValueError(f"fps must be at least 1 (got {fps})")
    if not seconds > 0 or round(seconds * fps) < 1:
        raise ValueError(f"seconds must give at least one frame at {fps} fps (got {seconds})")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1) (got {val_fraction})")
    if references < 1:
        raise ValueError(f"references must be at least 1 (got {references})")


def clip_spec(seed: int, index: int) -> tuple[SceneSpec, np.random.Generator]:
    """The scene of clip `index` under `seed`, and the generator that then writes its caption.

    Seeded by (seed, index), so a clip does not change when `count` does.
    """
    rng = np.random.default_rng([seed, index])
    return sample_scene(rng), rng


def val_indices(count: int, seed: int, val_fraction: float) -> set[int]:
    """Which clips go to `val`: round(count * fraction) of them (at least one when the fraction
    is above zero and there are two clips or more), chosen by the seed."""
    if val_fraction <= 0 or count < 2:
        return set()
    n_val = min(max(1, round(count * val_fraction)), count - 1)
    order = np.random.default_rng([seed, 0x5A1]).permutation(count)
    return {int(i) for i in order[:n_val]}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def encode_mp4(path: str | Path, frames: np.ndarray, fps: int, crf: int = 20) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 yuv420p mp4, written atomically.

    Same frames, same bytes, on one machine and PyAV build, in any process state:

    - One encoder thread: x264's output then does not depend on the machine's core count.
    - No macroblock tree (`mbtree=0`): x264's AVX-512 mbtree code reads heap memory it never
      wrote, so its output followed whatever the process's heap held before. A fresh process
      (zeroed pages) hid it; a long one (a test session, a big synth run) did not. Measured
      with the heap dirtied between 60 encodes of one clip: 14 different files by default,
      1 with AVX-512 left out of x264's `asm` flags, 1 with `mbtree=0`
      (tests/compat/test_synth_determinism.py). `mbtree=0` is used because an `asm` flag
      list names CPU features, and naming one the CPU lacks kills the process (SIGILL).
    """
    import av  # heavy; only when writing clips

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps, 1))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.options = X264_OPTIONS | {"crf": str(crf)}
            stream.codec_context.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; clips are ordinary files
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # the encoder's own errors: name the clip
            from kvcap.errors import one_line
            from kvcap.fsutil import OutputError

            raise OutputError(f"{path}: {one_line(exc, first_line=True)}") from None
        raise


def synthesize(
    out_dir: str | Path,
    count: int,
    seed: int,
    size: int = 112,
    seconds: float = 4.0,
    fps: int = 8,
    val_fraction: float = 0.1,
    references: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[ManifestItem]:
    """Render `count` clips into `out_dir/clips/` and write `out_dir/manifest.jsonl`.

    `references` > 1 stores that many differently worded captions per clip (a list). The
    manifest is written last, in one rename, so it never lists a clip that is not on disk.
    `progress(done, count)` is called after each clip.
    """
    check_args(count, size, seconds, fps, val_fraction, references)
    out_dir = Path(out_dir)
    num_frames = int(round(seconds * fps))
    val = val_indices(count, seed, val_fraction)
    items: list[ManifestItem] = []
    for index in range(count):
        spec, rng = clip_spec(seed, index)
        # The first caption's wording follows from the scene; extra references are paraphrases.
        captions = [compose_caption(spec, rng, paraphrase=k > 0) for k in range(references)]
        clip_id = f"synth-{seed}-{index:05d}"
        video = out_dir / CLIPS_DIR / f"{clip_id}.mp4"
        encode_mp4(video, render_frames(spec, size, num_frames), fps)
        items.append(
            ManifestItem(
                id=clip_id,
                video=video.resolve(),
                caption=captions[0] if references == 1 else captions,
                split="val" if index in val else "train",
                attributes=spec.attributes(),
            )
        )
        if progress is not None:
            progress(index + 1, count)
    write_manifest(out_dir / MANIFEST_NAME, items)
    return items
