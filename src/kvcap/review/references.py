"""`--refs MANIFEST`: each video's reference caption and its METEOR, by kvcap's own metric code
(the loaders' matching rule, then `score_predictions` with the METEOR metric alone: Kiwi
morphemes by default, the tokenizer `score.tokenizer` names)."""

from __future__ import annotations

from pathlib import Path

from kvcap.review.sources import ReviewItem


def clip_meteor(items: list[ReviewItem], refs: str | Path, score_cfg=None) -> tuple[dict[str, float], dict[str, str]]:
    """({video key: METEOR}, {video key: first reference}) for the ok videos the manifest has.

    Raises the loaders' one-line ScoreInputError for an unreadable manifest.
    """
    from kvcap.metrics import Predictions, load_references, match_keys, score_predictions

    if score_cfg is None:
        from kvcap.config import ScoreConfig

        score_cfg = ScoreConfig()
    manifest = load_references(refs)
    preds = Predictions(path=Path(refs))
    for item in items:
        if item.record.ok and item.record.caption is not None:
            preds.captions[item.key] = item.record.caption
            preds.videos[item.key] = item.key
    ids = {key: rid for key, rid in match_keys(preds, manifest).items() if rid in manifest.captions}
    if not ids:
        return {}, {}
    by_id = {rid: preds.captions[key] for key, rid in ids.items()}
    report = score_predictions(by_id, {rid: manifest.captions[rid] for rid in by_id}, score_cfg, metrics=["meteor"])
    scores = {row["id"]: float(row["meteor"]) for row in report.per_clip}
    meteor = {key: scores[rid] for key, rid in ids.items() if rid in scores}
    return meteor, {key: manifest.captions[rid][0] for key, rid in ids.items()}
