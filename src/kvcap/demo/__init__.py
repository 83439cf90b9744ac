"""The bundled demo model and the demo job (`kvcap demo`, which `make demo` runs).

    checkpoint/                       the shipped kvcap checkpoint (`--checkpoint demo`), built by
                                      scripts/build_demo_model.sh from examples/demo.toml
    run.run_demo(cfg, out_dir, count) synthesize unseen clips, caption them, score them

The checkpoint is an ordinary kvcap checkpoint trained by `kvcap train --stage 1/2`; nothing
in kvcap treats it specially beyond the name `demo` resolving to this folder.
"""

from kvcap.demo.run import DEMO_SCENES, DEMO_SEED, DemoError, DemoResult, run_demo

__all__ = ["DEMO_SCENES", "DEMO_SEED", "DemoError", "DemoResult", "run_demo"]
