"""The two-stage trainer (docs/architecture.md "Training" and docs/internals.md "Run directory").

    loop.py       train(cfg, stage, run_path, resume, init): the recipe for both stages
                  (TrainRecipe: setup, train, save_checkpoint, cleanup, in that order)
    steps.py      what the step loop uses and keeps no run state in: the loss module, the
                  schedule, the step log (progress bar, timers), SIGTERM as Ctrl-C
    accel.py      the Accelerator, memory and weight digests
    stages.py     stage presets ([train.stage1] / [train.stage2]) and stage 2's starting projector
    features.py   clip features from the feature cache (kvcap.data.cache) or decoded live
    evaluate.py   per-epoch eval: captions + the metric suite; eval rows, best/ choice, the alarm
    resume.py     resumable checkpoints (weights, optimizer, scheduler, RNG, data position)
    rundir.py     the run directory the TUI and `kvcap compare` read, and what an invocation
                  does with it (fresh, resume, stage 2), state.json
    compare.py    the projector comparison table

Nothing is imported here: `kvcap compare` imports compare.py and rundir.py without loading
torch. The file contracts those two read and write are kvcap.records.
"""
