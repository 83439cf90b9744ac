"""Append the demo recipe's proof of grounding to bench/RESULTS.md (a dated row under `## demo`).

    python -m kvcap.demo.record BUILD_DIR [--results bench/RESULTS.md] [--seconds S]

Reads what `scripts/build_demo_model.sh` left in BUILD_DIR: `heldout-score.json` (`kvcap score
--grounding --json`), `runs/demo/summary.json` and the run's config; appends one row (date,
machine, commit, recipe, train time, checkpoint size, held-out numbers) and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

from kvcap.metrics.grounding import TARGET_ACCURACY, TARGET_ATTRIBUTES, TARGET_DIVERSITY_SHARE, TARGET_GAP
from kvcap.records import RunSummary
from kvcap.records.metrics import seed_target

HEADING = "## demo"
COLUMNS = ["date", "machine", "commit", "train clips", "stage 2 epochs", "recipe s", "checkpoint MB", "held-out n",
           "METEOR", "blind METEOR", "gap", "diversity / refs", "time_of_day", "scene", "weather", "motion", "objects", "targets"]
INTRO = ("Issue 8: the bundled demo model (`scripts/build_demo_model.sh`, `examples/demo.toml`), scored on "
         "held-out synthetic clips (a seed the recipe never trained on) by `kvcap score --grounding`. "
         f"Targets (each strictly above): METEOR > {seed_target('meteor'):.2f}, gap over the blind baseline "
         f"> {TARGET_GAP:.2f}, diversity > {TARGET_DIVERSITY_SHARE:.0%} of the references', attribute accuracy "
         f"> {TARGET_ACCURACY:.0%} for {', '.join(TARGET_ATTRIBUTES)}.")


def _commit() -> str:
    """The short HEAD commit, with git's `-dirty` suffix when tracked files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        clean = subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True).returncode == 0
    except (OSError, subprocess.CalledProcessError):
        return "-"
    return commit if clean else f"{commit}-dirty"


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def build_row(build_dir: Path, checkpoint: Path, seconds: float | None) -> list[str]:
    score = json.loads((build_dir / "heldout-score.json").read_text(encoding="utf-8"))["summary"]
    g = score["grounding"]
    summary = RunSummary.from_dict(json.loads((build_dir / "runs" / "demo" / "summary.json").read_text(encoding="utf-8")))
    attrs = g.get("attributes", {})

    def pct(name: str) -> str:
        return f"{attrs[name]['accuracy']:.1%}" if name in attrs else "-"

    failed = [k for k, ok in g["passed"].items() if ok is False]
    return [
        dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        f"{platform.machine()} {os.cpu_count()} cpu",
        _commit(),
        str(summary.train_clips),
        f"{summary.epochs}",
        f"{seconds:.0f}" if seconds is not None else "-",
        f"{_dir_mb(checkpoint):.1f}",
        str(g["n"]),
        f"{g['meteor']:.4f}",
        f"{g['blind_meteor']:.4f}",
        f"{g['meteor_gap']:.4f}",
        f"{g['diversity']:.4f} / {g['ref_diversity']:.4f} ({g['diversity_share']:.0%})",
        pct("time_of_day"), pct("scene"), pct("weather"), pct("motion"), pct("objects"),
        "all pass" if not failed else "fail: " + ", ".join(failed),
    ]


def append_row(results: Path, row: list[str]) -> None:
    """Append under `## demo`, creating the heading and table header when missing."""
    text = results.read_text(encoding="utf-8") if results.is_file() else "# Benchmark results\n"
    line = "| " + " | ".join(row) + " |\n"
    if HEADING + "\n" not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n{INTRO}\n\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n" + line
    else:
        # Insert after the last table row of this section (other sections may follow it).
        head, _, tail = text.partition(HEADING + "\n")
        lines = tail.splitlines(keepends=True)
        end = 0
        for k, current in enumerate(lines):
            if current.startswith("#"):  # the next heading (a ### subsection too) ends the table
                break
            if current.startswith("|"):
                end = k + 1
        lines.insert(end, line)
        text = head + HEADING + "\n" + "".join(lines)
    from kvcap.fsutil import atomic_write_text

    atomic_write_text(results, text)  # other benches append to the same file: never a torn write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--results", type=Path, default=Path("bench/RESULTS.md"))
    parser.add_argument("--checkpoint", type=Path, default=Path("src/kvcap/demo/checkpoint"))
    parser.add_argument("--seconds", type=float, default=None, help="Recipe wall time (synth + both stages).")
    args = parser.parse_args(argv)
    row = build_row(args.build_dir, args.checkpoint, args.seconds)
    append_row(args.results, row)
    print("| " + " | ".join(COLUMNS) + " |")
    print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
