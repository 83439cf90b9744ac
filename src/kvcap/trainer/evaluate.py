"""Eval each epoch: caption the val split, score it with the shared metric suite.

Captions come from the same model step `kvcap caption` runs: the val clips' features come from
the trainer's FeatureSource (read from the feature cache, the default, or decoded with the same
sampler and encoded live without it), then `Captioner.generate` makes the texts, the call
`kvcap.caption.pipeline` makes after `encode` (same generation config, the same one clean line:
kvcap.model.prompt.clean_caption). The val loss is taken in the same pass over the features. Clips
that fail to decode are reported, not captioned.
Scores come from `kvcap.metrics.score_predictions` (METEOR, SigLIP2, Diversity, collapse).

What the trainer does with a result is here too: `eval_epoch` is one epoch's eval from end to
end; `record_eval` writes its eval row (metrics.jsonl), samples (samples.jsonl) and
predictions.jsonl into the run directory, `best_choice` says whether it is the new best/, and
`collapse_alarm` prints the mode-collapse banner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kvcap.data.manifest import ManifestItem


@dataclass
class EvalResult:
    summary: dict[str, Any]
    predictions: dict[str, str]
    loss: float | None
    seconds: float
    failed: list[str] = field(default_factory=list)  # one-line reasons of clips not captioned


@dataclass(frozen=True)
class EvalSettings:
    """What the per-epoch eval reads of the config, chosen once by the recipe's setup."""

    score: Any  # kvcap.config.ScoreConfig: metrics, tokenizer, SigLIP2 model, targets
    generation: Any  # kvcap.config.GenerationConfig: the captions are made as `kvcap caption` makes them
    train: Any  # kvcap.config.TrainConfig: eval_max_clips, best_metric, the recipe on the card
    manifest: str  # data.manifest, named on best/'s model card
    caption_batch: int | str  # caption.batch_size, for the captions and the val loss ("auto" is fixed, not probed)


class Evaluator:
    """Holds what lives across evals: the SigLIP2 scorer and the previous summary (collapse rule)."""

    def __init__(self, settings: EvalSettings, *, log: Callable[[str], None], device: str = "cpu"):
        self.settings = settings
        self.log = log
        self.device = device
        self.metrics = list(settings.score.metrics)
        self.siglip_scorer = None
        self.previous: dict[str, Any] | None = None

    def _ensure_siglip(self) -> None:
        if "siglip" not in self.metrics or self.siglip_scorer is not None:
            return
        from kvcap.metrics.siglip import SiglipUnavailable, load_siglip

        try:
            self.siglip_scorer = load_siglip(self.settings.score.siglip, device=self.device)
        except SiglipUnavailable as exc:
            self.log(f"eval: SigLIP2 skipped ({exc})")
            self.metrics.remove("siglip")

    def captions_and_loss(self, captioner, items: Sequence[ManifestItem], source) -> tuple[dict[str, str], float | None]:
        """(id -> caption, mean caption loss) for the clips of `items` that decode, in one pass over
        their features (see the module doc): the loss against each clip's first reference, then the
        caption as `kvcap caption` makes it. Batches of caption.batch_size, no gradients."""
        import torch

        from kvcap.caption.autotune import fixed_batch
        from kvcap.trainer.features import choose_caption

        batch_size = fixed_batch(self.settings.caption_batch)  # "auto" -> 4 (no probing mid-training)
        groups = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
        preds: dict[str, str] = {}
        total, count = 0.0, 0
        was_training = captioner.training
        captioner.eval()
        try:
            with torch.no_grad():
                for features, kept in source.batches(groups, captioner.device):  # (B, T, N, D), its clips
                    if not kept:  # every clip of the group failed to decode
                        continue
                    total += float(captioner.loss(features, [choose_caption(it, 0) for it in kept])) * len(kept)
                    count += len(kept)
                    for item, text in zip(kept, captioner.generate(features, self.settings.generation)):
                        preds[item.id] = text  # one clean line (model.prompt.clean_caption), as kvcap caption writes it
        finally:
            captioner.train(was_training)
        return preds, (total / count if count else None)

    def run(self, captioner, items: Sequence[ManifestItem], source) -> EvalResult:
        from kvcap.metrics import score_predictions

        start = time.perf_counter()
        if self.settings.train.eval_max_clips:
            items = list(items)[: self.settings.train.eval_max_clips]
        dropped_before = len(source.dropped)  # live decoding: the eval's failures are its own, not the epoch's
        preds, loss = self.captions_and_loss(captioner, items, source)
        failed = list(dict.fromkeys(bad.reason for bad in source.dropped[dropped_before:]))
        del source.dropped[dropped_before:]
        self._ensure_siglip()
        refs = {it.id: it.references for it in items if it.id in preds}
        report = score_predictions(
            preds, refs, self.settings.score, videos={it.id: Path(it.video) for it in items},
            metrics=self.metrics, previous=self.previous, siglip_scorer=self.siglip_scorer, device=self.device,
        )
        self.previous = report.summary
        return EvalResult(summary=report.summary, predictions=preds, loss=loss,
                          seconds=time.perf_counter() - start, failed=failed)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def record_eval(run, result: EvalResult, items: Sequence[ManifestItem], *, stage: int, step: int, epoch: float,
                say: Callable[[str], None]) -> dict[str, Any]:
    """Write an eval's row (metrics.jsonl), its samples and predictions.jsonl; returns the row."""
    from kvcap.records import EvalRow, SampleRow, utc_now

    s = result.summary
    row = EvalRow.from_summary(s, stage=stage, step=step, epoch=epoch, loss=result.loss,
                               eval_s=round(result.seconds, 2), time=utc_now()).to_dict()
    run.log_metrics(row)
    by_id = {it.id: it for it in items}
    for clip_id, prediction in result.predictions.items():
        item = by_id[clip_id]
        run.log_sample(SampleRow(stage=stage, epoch=epoch, step=step, id=clip_id, video=str(item.video),
                                 prediction=prediction, reference=item.references[0]).to_dict())
    run.write_predictions([
        {"id": clip_id, "video": str(by_id[clip_id].video), "caption": text, "stage": stage, "step": step}
        for clip_id, text in result.predictions.items()
    ])
    say(f"eval step {step}: loss {_fmt(result.loss)}  METEOR {_fmt(row['meteor'])}  "
        f"SigLIP2 {_fmt(row['siglip'])}  Diversity {_fmt(row['diversity'])}  ({result.seconds:.1f}s, {s.get('n')} clips)")
    if result.failed:
        say(f"eval: {len(result.failed)} clip(s) not captioned, e.g. {result.failed[0]}")
    return row


def best_choice(best_metric: str, loss: float | None, row: dict[str, Any], best: dict[str, Any] | None,
                say: Callable[[str], None]) -> tuple[str, float | None] | None:
    """(metric, value) when this eval beats `best` (the run's best so far), else None. A metric
    the eval could not give (e.g. SigLIP2 unavailable) falls back to the eval loss."""
    from kvcap.records import is_better

    metric = best_metric
    value = loss if metric == "loss" else row.get(metric)
    if value is None:
        say(f"eval: {metric} unavailable; best/ is chosen by eval loss this time")
        metric, value = "loss", loss
    current = best.get("value") if best and best.get("metric") == metric else None
    if best is None or is_better(metric, value, current):
        return metric, value
    return None


def collapse_alarm(step: int, reasons: list[str], say: Callable[[str], None]) -> None:
    """The mode-collapse banner: red on a terminal, else one more log line."""
    import sys

    import click

    banner = "!" * 72
    message = "\n".join([banner, f"MODE COLLAPSE ALARM at step {step}:"] + [f"  - {r}" for r in reasons] + [banner])
    if sys.stderr.isatty():
        click.secho(message, fg="red", bold=True, err=True)
    else:
        say(message)


def eval_epoch(evaluator: Evaluator, captioner, features, run, position, *, stage: int, epoch: float,
               evaluate: bool, say: Callable[[str], None]) -> dict[str, Any] | None:
    """One epoch's eval on the main process: caption and score the val clips, write the row and
    samples, save best/ when it is the new best. Moves `position` (a TrainPosition: best,
    best_eval, last_eval); returns the eval row, or None when there was no eval (no val clips, or
    `evaluate` off), in which case best/ is the latest model."""
    val_items = features.val_items
    if not evaluate or not val_items:
        if not val_items and evaluate:
            say("eval: no val clips (no line has \"split\": \"val\"): best/ is the latest model")
        captioner.save(run.best_dir)
        position.best = {"metric": "last", "value": None, "step": position.step}
        return None
    result = evaluator.run(captioner, val_items, features.source)
    row = record_eval(run, result, val_items, stage=stage, step=position.step, epoch=epoch, say=say)
    if row["collapse"]:
        collapse_alarm(position.step, row["collapse_reasons"], say)
    settings = evaluator.settings
    choice = best_choice(settings.train.best_metric, result.loss, row, position.best, say)
    if choice is not None:
        from kvcap.model.card import training_facts

        metric, value = choice
        card = training_facts(settings.train, settings.manifest, settings.score, stage, row, run.path)
        captioner.save(run.best_dir, card=card)
        position.best, position.best_eval = {"metric": metric, "value": value, "step": position.step}, row
        say(f"best/ <- step {position.step} ({metric} {'-' if value is None else f'{value:.4f}'})")
    position.last_eval = row
    return row
