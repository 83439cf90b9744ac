"""Start-up: wall time of a one-clip `kvcap caption --checkpoint demo` beside `import torch`.

    python bench/startup.py [--reps 5] [--no-record]

Runs, interleaved on the same machine (so load changes hit all alike), each as a fresh process:

- `python -c "import torch"`                               the floor any torch program pays
- `python -c "import torch; <CLIP + Qwen3 modeling>"`        transformers' own import floor
- `kvcap caption one.mp4 --checkpoint demo -o TMP --quiet`  the whole command, one 2 s clip

and reports the median wall time (and CPU seconds, user + system, steadier on a shared box) of
each. Appends a row to bench/RESULTS.md `## startup` and ends with the headline
`startup_ratio` = caption wall / torch-import wall (target <= 2.0).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

PY = sys.executable
TRANSFORMERS_FLOOR = ("import torch; from transformers.models.clip.modeling_clip import CLIPVisionModel; "
                      "from transformers.models.qwen3.modeling_qwen3 import Qwen3ForCausalLM")


def make_clip(path: Path) -> Path:
    """A 2 s 160x120 H.264 clip (PyAV's lavfi testsrc)."""
    import av

    graph = av.filter.Graph()
    source = graph.add("testsrc", "size=160x120:rate=15")
    sink = graph.add("buffersink")
    source.link_to(sink)
    graph.configure()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for index in range(30):
            frame = sink.pull().reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs of each command (medians are reported)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PYTHONPATH"] = str(benchlib.ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="kvcap-startup-") as tmp:
        clip = make_clip(Path(tmp) / "one.mp4")
        commands = {
            "torch": [PY, "-c", "import torch"],
            "transformers": [PY, "-c", TRANSFORMERS_FLOOR],
            "caption": [PY, "-m", "kvcap.cli", "caption", str(clip), "--checkpoint", "demo", "-o",
                        str(Path(tmp) / "out"), "--quiet", "--overwrite"],
        }
        timed(commands["caption"], env)  # warm the page cache (and any first-use cache) once
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for rep in range(args.reps):
            for name, cmd in commands.items():
                runs[name].append(timed(cmd, env))
                wall, cpu = runs[name][-1]
                print(f"run {rep + 1}/{args.reps} {name:12s} wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)

    wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
    cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
    ratio = wall["caption"] / wall["torch"]
    cpu_ratio = cpu["caption"] / cpu["torch"]
    floor_ratio = wall["transformers"] / wall["torch"]
    for name in commands:
        print(f"median {name:12s} wall {wall[name]:6.2f} s  cpu {cpu[name]:6.2f} s")
    print(f"caption / torch: wall {ratio:.2f}x, cpu {cpu_ratio:.2f}x; transformers floor / torch: wall {floor_ratio:.2f}x")
    if not args.no_record:
        header = ("Median seconds over fresh processes, interleaved: `import torch`, torch + transformers' CLIP and "
                  "Qwen3 modeling imports, and a one-clip `kvcap caption --checkpoint demo`.\n\n"
                  "| date | machine | commit | reps | torch wall | transformers wall | caption wall | torch cpu | "
                  "transformers cpu | caption cpu | caption/torch wall | caption/torch cpu |\n"
                  "|---|---|---|---|---|---|---|---|---|---|---|---|")
        row = (f"| {benchlib.now()} | {benchlib.machine()} | {benchlib.git_commit()} | {args.reps} | "
               f"{wall['torch']:.2f} | {wall['transformers']:.2f} | {wall['caption']:.2f} | {cpu['torch']:.2f} | "
               f"{cpu['transformers']:.2f} | {cpu['caption']:.2f} | {ratio:.2f} | {cpu_ratio:.2f} |")
        benchlib.append_row("## startup", header, row)
    print(f"headline: startup_ratio = {ratio:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
