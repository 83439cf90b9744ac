"""kvcap: Korean captions for folders of videos with a LLaVA-style vision-language model."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads spin while they wait for work. When anything else wants the cores —
# kvcap's own background decoders, a second job — the spinning threads and the work they wait
# for fight over them: measured here, greedy decoding of 4 clips with the demo model took 6.8 s
# with 2 threads on a busy 2-core machine, 0.08 s with a passive wait policy (and the same
# 0.08 s on 1 thread). Set before torch loads (kvcap is imported first); the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
