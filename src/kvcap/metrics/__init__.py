"""The metric suite shared by `kvcap score` and training eval (see docs/internals.md). Which
metrics exist is the table in kvcap.records.metrics; their compute functions are in compute.py.

    score_predictions(predictions, references, cfg, videos=None, metrics=None, previous=None) -> ScoreReport
    render_table(report) -> rich Table
    load_predictions(path) / load_references(manifest) / match_predictions(preds, refs) / match_keys(preds, refs)

Nothing here imports torch until SigLIP2 is actually scored.
"""

from kvcap.metrics.loaders import (
    Predictions,
    References,
    ScoreInputError,
    load_predictions,
    load_references,
    match_keys,
    match_predictions,
)
from kvcap.metrics.report import render_table
from kvcap.metrics.suite import ScoreReport, UnknownMetricError, score_predictions

__all__ = [
    "Predictions",
    "References",
    "ScoreInputError",
    "ScoreReport",
    "UnknownMetricError",
    "load_predictions",
    "load_references",
    "match_keys",
    "match_predictions",
    "render_table",
    "score_predictions",
]
