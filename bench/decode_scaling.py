"""Decode workers x FFmpeg threads: does more workers ever make sampling slower?

    python bench/decode_scaling.py [--clips N] [--seconds S] [--no-record]

On 1080p and 720p H.264 clips (bench/frames.py's panning texture, x264 default GOP, cached under
.kvcap-cache/), samples 8 frames at 336 px from N clips through a thread pool of W workers, as
`kvcap caption` does, for W = 1, 2, 4, 8 and two thread settings:

    ffmpeg-auto   every decoder opens with FFmpeg's own thread count (one per core): kvcap before issue 17
    planned       kvcap.video.threads.plan(W): cores // W threads per decoder (kvcap now)

and prints clips/s (best of --reps interleaved rounds). The headline: for each thread setting,
the worst ratio of a run's clips/s to the best clips/s at fewer workers (1.0 = more workers were
never slower). A row goes to bench/RESULTS.md under `## decode scaling`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from frames import CACHE, make_clip  # noqa: E402  (bench/frames.py)

sys.path.insert(0, str(benchlib.ROOT / "src"))
from kvcap.video import sample_frames  # noqa: E402
from kvcap.video import threads  # noqa: E402

HEADER = ("| date | machine | commit | clips | workers | 1080p ffmpeg-auto clips/s | 1080p planned clips/s | "
          "720p ffmpeg-auto clips/s | 720p planned clips/s | never slower (auto / planned) |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
WORKERS = (1, 2, 4, 8)


def run(paths: list[Path], workers: int, per_decoder: int) -> float:
    """clips/s sampling `paths` with `workers` threads, `per_decoder` FFmpeg threads each (0 = auto)."""
    threads.set_decoder_threads(per_decoder)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda p: sample_frames(p, 8, 336, backend="pyav"), paths):
            pass
    return len(paths) / (time.perf_counter() - start)


def never_slower(rates: dict[int, float]) -> float:
    """min over W of rate(W) / max(rate(w) for w < W): >= 1 when adding workers never hurt."""
    ratios = [rates[w] / max(rates[v] for v in WORKERS if v < w) for w in WORKERS if w != WORKERS[0]]
    return min(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per run (copies of one clip per resolution)")
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    cores = threads.available_cores()
    work = Path(tempfile.mkdtemp(prefix="kvcap-decode-scaling-"))
    table: dict[str, dict[str, dict[int, float]]] = {}
    try:
        for name, (w, h) in {"1080p": (1920, 1080), "720p": (1280, 720)}.items():
            source = make_clip(CACHE / f"{name}_{int(args.seconds)}s.mp4", w, h, args.seconds)
            paths = []
            for i in range(args.clips):  # separate files, as a folder of videos is
                paths.append(work / f"{name}-{i}.mp4")
                shutil.copyfile(source, paths[-1])
            run(paths[:2], 1, 0)  # warm-up
            rates: dict[str, dict[int, list[float]]] = {"ffmpeg-auto": {}, "planned": {}}
            for _ in range(args.reps):
                for workers in WORKERS:
                    rates["ffmpeg-auto"].setdefault(workers, []).append(run(paths, workers, 0))
                    rates["planned"].setdefault(workers, []).append(run(paths, workers, threads.plan(workers, cores)[1]))
            table[name] = {k: {w: max(v) for w, v in per.items()} for k, per in rates.items()}
    finally:
        threads.set_decoder_threads(0)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.clips} clips a run, 8 frames at 336 px, PyAV, {cores} cores; clips/s, best of {args.reps}")
    print(f"{'clip':<7}{'threads':<13}" + "".join(f"{f'W={w}':>9}" for w in WORKERS) + f"{'never slower':>14}")
    verdict = {}
    for name, per in table.items():
        for setting, rates in per.items():
            ratio = never_slower(rates)
            verdict.setdefault(setting, []).append(ratio)
            print(f"{name:<7}{setting:<13}" + "".join(f"{rates[w]:>9.2f}" for w in WORKERS) + f"{ratio:>14.2f}")
    worst = {k: min(v) for k, v in verdict.items()}
    if not args.no_record:
        cells = []
        for name in ("1080p", "720p"):
            for setting in ("ffmpeg-auto", "planned"):
                cells.append("/".join(f"{table[name][setting][w]:.2f}" for w in WORKERS))
        row = (f"| {benchlib.now()} | {benchlib.machine()} | {benchlib.git_commit()} | {args.clips} | "
               f"{'/'.join(map(str, WORKERS))} | " + " | ".join(cells) +
               f" | {worst['ffmpeg-auto']:.2f} / {worst['planned']:.2f} |")
        benchlib.append_row("## decode scaling", HEADER, row)
    print(f"headline: worst clips/s ratio when adding workers: ffmpeg-auto {worst['ffmpeg-auto']:.2f}, "
          f"planned {worst['planned']:.2f} (>= ~0.95 means never slower, within noise)")


if __name__ == "__main__":
    main()
