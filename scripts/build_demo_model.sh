#!/usr/bin/env bash
# Build the bundled demo model with kvcap's own pipeline, then prove it on held-out clips.
#
#   scripts/build_demo_model.sh            # ~21 min on a 2-core CPU; writes build/demo/ and
#                                          # src/kvcap/demo/checkpoint/
#
# Steps: synthetic scenes (fixed seed) -> stage 1 -> stage 2 (examples/demo.toml) -> copy
# best/ into the package -> caption 200 held-out clips (a seed the recipe never trains on) and
# score them (`kvcap score --grounding`: METEOR, diversity, blind baseline, attribute accuracy).
# Nothing here is special to the demo: these are the commands a user runs.
set -euo pipefail
cd "$(dirname "$0")/.."

KVCAP=${KVCAP:-.venv/bin/kvcap}
PYTHON=${PYTHON:-.venv/bin/python}
BUILD=${BUILD:-build/demo}   # override BUILD and TARGET to rebuild elsewhere (e.g. to check reproducibility)
CONFIG=examples/demo.toml
TRAIN_SEED=8          # the training/val scenes
HELDOUT_SEED=9008     # held-out scenes, never trained on (kvcap demo uses yet another seed)
TARGET=${TARGET:-src/kvcap/demo/checkpoint}

PATHS=(--set "data.manifest=$BUILD/data/manifest.jsonl" --set "data.cache_dir=$BUILD/cache" --set "train.runs_dir=$BUILD/runs")

[ -n "$BUILD" ] && [ "$BUILD" != / ] || { echo "BUILD must name a build folder" >&2; exit 2; }
rm -rf "$BUILD"
mkdir -p "$BUILD"
# A private KVCAP_HOME: the tiny backbones (and the tiny tokenizer, trained on the current
# caption grammar) are written fresh from their fixed seeds, never taken from an older cache.
export KVCAP_HOME="$(cd "$BUILD" && pwd)/home"
start=$(date +%s)

"$KVCAP" data synth --out "$BUILD/data" --count 10000 --seed "$TRAIN_SEED" --size 64 --seconds 2 --fps 8 --val-fraction 0.05 --quiet
"$KVCAP" train --stage 1 --config "$CONFIG" "${PATHS[@]}" --run demo
"$KVCAP" train --stage 2 --config "$CONFIG" "${PATHS[@]}" --run demo
trained=$(( $(date +%s) - start ))
echo "recipe (synth + stage 1 + stage 2) took $trained s"

rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
cp -r "$BUILD/runs/demo/best" "$TARGET"
chmod -R a+rX "$TARGET"   # the trainer writes weights owner-only; the package ships them readable
du -sh "$TARGET"

# Proof of grounding on held-out scenes, through the shipped checkpoint (`--checkpoint demo`).
CHECKPOINT=demo
[ "$TARGET" = src/kvcap/demo/checkpoint ] || CHECKPOINT="$TARGET"
"$KVCAP" data synth --out "$BUILD/heldout" --count 200 --seed "$HELDOUT_SEED" --size 64 --seconds 2 --fps 8 --val-fraction 0 --quiet
"$KVCAP" caption "$BUILD/heldout/clips" --checkpoint "$CHECKPOINT" --config "$CONFIG" -o "$BUILD/heldout-captions" --format jsonl --overwrite
"$KVCAP" score "$BUILD/heldout-captions/captions.jsonl" --refs "$BUILD/heldout/manifest.jsonl" --config "$CONFIG" --grounding \
    --json > "$BUILD/heldout-score.json"
"$KVCAP" score "$BUILD/heldout-captions/captions.jsonl" --refs "$BUILD/heldout/manifest.jsonl" --config "$CONFIG" --grounding
"$PYTHON" -m kvcap.demo.record "$BUILD" --checkpoint "$TARGET" --seconds "$trained"   # a dated row in bench/RESULTS.md
"$PYTHON" -m kvcap.demo.card "$TARGET" --results bench/RESULTS.md   # README.md model card from that row
echo "done in $(( $(date +%s) - start )) s"
