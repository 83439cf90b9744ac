"""`kvcap caption --cluster ray`: the caption job's stages on Ray Data (an optional extra,
`pip install 'kvcap[ray]'`). Importing this package does not import Ray; each module imports it
where it runs.

    connect.py       join or start the cluster (and stop the one kvcap started)
    engine.py        the driver: plan -> dataset -> rows -> the local engine's sink
    stages.py        the dataset: decode tasks (CPU) -> captioner actor pool (GPU)
    decode_stage.py  one video -> its windows' frames (the local sampler; scenes in one pass)
    gpu_stage.py     the actor: one captioner, the local model step
    worker.py        loading the captioner on a worker, `auto` decided on its card
    assemble.py      rows back into videos, each written once
"""
