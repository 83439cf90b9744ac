"""`kvcap caption --cluster ray` on this machine, and a simulated fleet of GPU workers.

    python bench/fleet.py [--quick] [--clips 256] [--no-record]

1. Ray vs local: the same clips (`kvcap data synth`, 2 s) captioned with the demo model by
   `kvcap caption` and by `kvcap caption --cluster ray` (a local cluster kvcap starts itself),
   each a fresh process. Threads fixed: OMP_NUM_THREADS=1 for both drivers; local = 2 decode
   threads x 1 FFmpeg thread + torch on 1 thread; Ray = 2 CPUs, the captioner actor takes 1
   (Ray gives it OMP_NUM_THREADS=1), decode tasks 1 CPU and 1 FFmpeg thread each. The ratio is
   Ray's wall time without the cluster's start-up over local's (both include loading the model);
   start-up is reported apart. Texts are compared too.
2. A simulated fleet: real CPU decoding (kvcap's Ray decode stage, 360p H.264 clips, 8 frames
   at 336 px) feeds N stand-in GPU workers. A stand-in holds one unit of a custom resource
   `standin` and no CPU, and sleeps a fixed STANDIN_S per batch of BATCH clips. Reported per N:
   clips/s, scaling against N x the one-worker rate, and each worker's busy fraction (sleeping
   time over the span from the moment all N had their first batch, so actor start-up is left
   out, to the last batch's end). Decoding alone (no consumer) gives the
   saturation rate, reported as clips/s per core.

Last line: `headline: ray/local wall = X (target <= 1.3)`. A row goes under `## fleet` in
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from frames import CACHE, make_clip  # noqa: E402  (bench/frames.py)

sys.path.insert(0, str(benchlib.ROOT / "src"))

STANDIN_S = 2.5  # seconds a stand-in GPU worker spends on one batch
BATCH = 4  # clips per stand-in batch: one stand-in does BATCH / STANDIN_S = 1.6 clips/s
CORES = 2  # the local cluster's CPUs (this VM's cores)
SIZE = 336  # frames sampled at CLIP-L/336's input size, as the real model takes them
HEADER = ("| date | machine | commit | clips | local s | ray s (start-up) | ray/local | same texts | "
          "decode clips/s per core | stand-in s/batch | N: clips/s (scaling, min busy) | load avg |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def kvcap(*args: str, env: dict[str, str]) -> float:
    """Wall seconds of one `kvcap` process (it must succeed)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kvcap.cli", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"kvcap {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def synth_clips(count: int) -> Path:
    folder = benchlib.ROOT / ".kvcap-cache" / "bench-fleet" / f"synth-{count}"
    if not (folder / "manifest.jsonl").exists():  # written last: a folder without it is a killed run's
        shutil.rmtree(folder, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": str(benchlib.ROOT / "src")}
        kvcap("data", "synth", "--out", str(folder), "--count", str(count), "--seconds", "2", "--quiet", env=env)
    return folder / "clips"


def texts(out: Path) -> dict[str, tuple]:
    lines = (out / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["video"]: (r["caption"], json.dumps(r["segments"])) for r in map(json.loads, lines)}


def ray_vs_local(count: int, work: Path) -> dict:
    clips = synth_clips(count)
    env = {**os.environ, "PYTHONPATH": str(benchlib.ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    common = [str(clips), "--checkpoint", "demo", "-q", "--batch-size", "4", "--format", "srt"]
    local = kvcap("caption", *common, "-o", str(work / "local"), "--workers", "2", env=env)
    on_ray = kvcap("caption", *common, "-o", str(work / "ray"), "--cluster", "ray", env=env)
    startup = json.loads((work / "ray" / "job.json").read_text())["ray"]["startup_s"]
    same = texts(work / "local") == texts(work / "ray")
    return {"clips": count, "local_s": local, "ray_s": on_ray, "startup_s": startup,
            "ratio": (on_ray - startup) / local, "same": same}


class StandIn:
    """A stand-in GPU worker: a fixed time per batch, no CPU (Ray resource `standin`)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        start = time.time()
        time.sleep(self.seconds)
        rows = len(batch["key"])
        return {"key": batch["key"], "pid": np.full(rows, os.getpid()), "start": np.full(rows, start),
                "end": np.full(rows, time.time())}


def fleet_clips(count: int) -> list:
    from kvcap.caption.inputs import VideoInput

    source = make_clip(CACHE / "fleet-640x360-2s.mp4", 640, 360, 2.0)
    folder = Path(tempfile.mkdtemp(prefix="kvcap-fleet-"))
    videos = []
    for i in range(count):  # distinct files, as a real folder has (no page cache shared by name)
        path = folder / f"c{i:04d}.mp4"
        shutil.copyfile(source, path)
        videos.append(VideoInput(path=path, key=path.name))
    return videos


def decode_only(videos: list, options) -> float:
    """clips/s of the decode stage alone, every core decoding."""
    from kvcap.caption.cluster.stages import decode_dataset

    t0 = time.perf_counter()
    rows = sum(1 for _ in decode_dataset(videos, options, size=SIZE, decode_cpus=1, retries=0,
                                           flag=None, cpus=CORES).iter_rows())
    return rows / (time.perf_counter() - t0)


def fleet_run(videos: list, options, workers: int) -> dict:
    """Decode stage -> `workers` stand-ins; clips/s and each stand-in's busy fraction."""
    import ray

    from kvcap.caption.cluster.stages import decode_dataset

    dataset = decode_dataset(videos, options, size=SIZE, decode_cpus=1, retries=0, flag=None, cpus=CORES).map_batches(
        StandIn, fn_constructor_kwargs={"seconds": STANDIN_S}, batch_size=BATCH, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=0, resources={"standin": 1})
    batches: dict[tuple, int] = {}  # (stand-in pid, start, end) -> clips
    for row in dataset.iter_rows():
        key = (int(row["pid"]), float(row["start"]), float(row["end"]))
        batches[key] = batches.get(key, 0) + 1
    return {"workers": workers, **steady_state(batches)}


def steady_state(batches: dict[tuple, int]) -> dict:
    """clips/s and busy fractions from the moment every stand-in had its first batch (actor
    start-up left out) to the last batch's end (the final drain counted as idle time)."""
    pids = {pid for pid, _, _ in batches}
    t0 = max(min(s for p, s, _ in batches if p == pid) for pid in pids)
    t1 = max(e for _, _, e in batches)
    span = t1 - t0
    clips, busy = 0.0, dict.fromkeys(pids, 0.0)
    for (pid, start, end), count in batches.items():
        inside = max(0.0, min(end, t1) - max(start, t0))
        busy[pid] += inside
        clips += count * inside / (end - start)
    return {"clips_s": clips / span, "span_s": span, "busy": sorted(round(b / span, 3) for b in busy.values())}


def simulated_fleet(counts: list[int], per_worker: int, quick: bool) -> dict:
    import ray

    from kvcap.caption.plan import CaptionOptions

    options = CaptionOptions(frames=8, backend="pyav", segment=0.0, batch_size=BATCH)
    ray.init(num_cpus=CORES, resources={"standin": max(counts)}, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        warm = fleet_clips(2 * CORES)
        decode_only(warm, options)  # start the decode workers once
        saturation = decode_only(fleet_clips(16 if quick else 64), options)
        runs = [fleet_run(fleet_clips(per_worker * n), options, n) for n in counts]
    finally:
        ray.shutdown()
    one = runs[0]["clips_s"]
    for run in runs:
        run["scaling"] = run["clips_s"] / (one * run["workers"])
    return {"decode_clips_s": saturation, "per_core": saturation / CORES, "runs": runs}


def record(a: dict, fleet: dict, quick: bool) -> None:
    runs = "; ".join(f"{r['workers']}: {r['clips_s']:.2f} ({r['scaling']:.2f}, {min(r['busy']):.2f})"
                     for r in fleet["runs"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    row = (f"| {benchlib.now()} | {benchlib.machine()} | {benchlib.git_commit()} | {a['clips']}{' (quick)' if quick else ''} "
           f"| {a['local_s']:.1f} | {a['ray_s']:.1f} ({a['startup_s']:.1f}) | {a['ratio']:.2f} | {a['same']} "
           f"| {fleet['per_core']:.2f} | {STANDIN_S} (batch {BATCH}) | {runs} | {load} |")
    benchlib.append_row("## fleet", HEADER, row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 clips, 1 and 2 stand-ins (for tests)")
    parser.add_argument("--clips", type=int, default=256, help="clips for Ray vs local")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--fleet-only", action="store_true", help="only the simulated fleet (no row recorded)")
    args = parser.parse_args()
    counts = [1, 2] if args.quick else [1, 2, 4, 8]
    a = None
    if not args.fleet_only:
        with tempfile.TemporaryDirectory(prefix="kvcap-fleet-") as tmp:
            a = ray_vs_local(16 if args.quick else args.clips, Path(tmp))
        print(f"ray vs local, {a['clips']} clips: local {a['local_s']:.1f} s, ray {a['ray_s']:.1f} s of which "
              f"cluster start-up {a['startup_s']:.1f} s -> ratio {a['ratio']:.2f} (same texts: {a['same']})")
    fleet = simulated_fleet(counts, 4 * BATCH if args.quick else 8 * BATCH, args.quick)
    print(f"decode stage alone: {fleet['decode_clips_s']:.2f} clips/s on {CORES} cores = "
          f"{fleet['per_core']:.2f} clips/s per core (360p H.264, 8 frames at 336 px)")
    print(f"stand-in GPU workers: {STANDIN_S} s per batch of {BATCH} = {BATCH / STANDIN_S:.2f} clips/s each")
    print("| N | clips/s | scaling vs N x one | busy per worker |\n|---|---|---|---|")
    for r in fleet["runs"]:
        print(f"| {r['workers']} | {r['clips_s']:.2f} | {r['scaling']:.2f} | {', '.join(map(str, r['busy']))} |")
    if a is None:
        return
    if not args.no_record:
        record(a, fleet, args.quick)
    print(f"headline: ray/local wall = {a['ratio']:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
