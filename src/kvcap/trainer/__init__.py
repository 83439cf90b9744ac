"""The two-stage trainer (see DESIGN.md "Training" and docs/internals.md "Run directory").

    loop.py       train(cfg, stage, run_path, resume, init): the one loop for both stages
    stages.py     stage presets ([train.stage1] / [train.stage2]) and stage 2's starting projector
    features.py   clip features from the feature cache (kvcap.data.cache) or decoded live
    evaluate.py   per-epoch eval: captions + the metric suite
    resume.py     resumable checkpoints (weights, optimizer, scheduler, RNG, data position)
    rundir.py     the run directory the TUI and `kvcap compare` read
    compare.py    the projector comparison table

Nothing is imported here: `kvcap compare` imports compare.py and rundir.py without loading
torch. The file contracts those two read and write are kvcap.records.
"""
