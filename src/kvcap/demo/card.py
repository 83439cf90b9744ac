"""Write the demo checkpoint's model card from its held-out numbers in bench/RESULTS.md (`## demo`).

    python -m kvcap.demo.card [CHECKPOINT] [--results bench/RESULTS.md]

scripts/build_demo_model.sh runs it after `kvcap.demo.record` appended the new row. The facts
are also stored in the checkpoint's kvcap.json (`card`), so `kvcap export demo OUT` writes the
same card. The card says plainly that the model knows synthetic scenes only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from kvcap.demo.record import COLUMNS, HEADING
from kvcap.metrics.grounding import TARGET_DIVERSITY_SHARE
from kvcap.records.metrics import seed_target

NOTES = [
    "**This model knows synthetic scenes only.** It is kvcap's demo: tiny random backbones trained on "
    "procedurally drawn clips (sky by time of day, sea / mountains / city / field, weather, moving "
    "things, camera motion). On real video it describes mountains and birds with confidence; it is not "
    "a model of real video. Real use trains CLIP ViT-L/14-336 + Qwen3-8B on real captions.",
]


def latest_demo_row(results: Path) -> dict[str, str]:
    """The newest row (by date) of the `## demo` table(s) in RESULTS.md, as {column: cell}."""
    text = results.read_text(encoding="utf-8")
    if HEADING + "\n" not in text:
        raise ValueError(f"{results}: no {HEADING!r} section")
    section = text.split(HEADING + "\n", 1)[1]
    section = re.split(r"(?m)^## ", section, maxsplit=1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == len(COLUMNS) and re.match(r"\d{4}-\d\d-\d\d", cells[0]):
            rows.append(dict(zip(COLUMNS, cells)))
    if not rows:
        raise ValueError(f"{results}: no result rows under {HEADING!r}")
    return max(rows, key=lambda row: row["date"])


def demo_facts(row: dict[str, str]) -> dict[str, Any]:
    """Model-card facts from one RESULTS.md row."""
    return {
        "name": "kvcap demo captioner (synthetic scenes only)",
        "metrics": {"meteor": float(row["METEOR"]), "diversity_share": diversity_share(row["diversity / refs"])},
        "split": "held-out",
        "dataset": "kvcap-synthetic-scenes",
        "notes": NOTES,
        "data": (f"`kvcap data synth` scenes: {row['train clips']} training clips (seed 8, 64 px, 2 s, 8 fps). "
                 f"The numbers below are on {row['held-out n']} held-out clips of another seed (9008), "
                 f"measured {row['date']} on {row['machine']} at commit {row['commit']} (bench/RESULTS.md `## demo`): "
                 f"METEOR {row['METEOR']} against a blind baseline of {row['blind METEOR']}; attribute accuracy "
                 f"time of day {row['time_of_day']}, scene {row['scene']}, weather {row['weather']}, "
                 f"camera motion {row['motion']}, objects {row['objects']}; targets: {row['targets']}."),
        "recipe": [
            "`scripts/build_demo_model.sh` with `examples/demo.toml`: stage 1 aligns the projector (0.5 epoch), "
            f"stage 2 trains projector + the whole tiny LLM ({row['stage 2 epochs']} epochs)",
            f"recipe wall time {row['recipe s']} s on {row['machine']}; checkpoint {row['checkpoint MB']} MB",
        ],
        "targets": {"meteor": seed_target("meteor"), "diversity_share": TARGET_DIVERSITY_SHARE},
    }


def diversity_share(cell: str) -> float:
    """`0.0456 / 0.0428 (106%)` -> 1.06: the recorded share (the README's figure), else the ratio."""
    share = re.search(r"\((\d+(?:\.\d+)?)%\)", cell)
    if share:
        return float(share.group(1)) / 100
    ours, refs = (float(part) for part in cell.split("(")[0].split("/"))
    return ours / refs


def write_demo_card(checkpoint: Path, results: Path) -> Path:
    """Store the facts in kvcap.json (`card`) and write README.md."""
    from kvcap.model.card import write_card
    from kvcap.model.checkpoint import CheckpointSpec

    spec = CheckpointSpec.load(checkpoint)
    spec.card = demo_facts(latest_demo_row(results))
    spec.save(checkpoint)
    return write_card(checkpoint, spec, spec.card)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, nargs="?", default=Path("src/kvcap/demo/checkpoint"))
    parser.add_argument("--results", type=Path, default=Path("bench/RESULTS.md"))
    args = parser.parse_args(argv)
    print(write_demo_card(args.checkpoint, args.results))


if __name__ == "__main__":
    main()
