"""The model card: `README.md` in every checkpoint, in the Hugging Face format, so a checkpoint
folder can be shared as it is and says what it is.

    write_card(DIR, spec, facts)   # YAML front matter (base_model, library_name, language ko,
                                   # tags, model-index with eval metrics) + data, recipe,
                                   # projector, frames, targets, how to caption

`spec` is the CheckpointSpec; `facts` (optional) is what the writer knows beyond it:

    {"name": "runs/x best", "metrics": {"meteor": 0.41, ...}, "split": "val", "dataset": "data/manifest.jsonl",
     "data": "one line of text", "recipe": ["line", ...], "targets": {"meteor": 0.40, ...},
     "notes": ["paragraph", ...]}

Built with huggingface_hub's ModelCard (a transformers dependency). Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvcap.model.tiny import is_tiny
from kvcap.records import Targets, labels, passes_target

LIBRARY = "kvcap"
TASK = "video-text-to-text"


# Shares of the references' own value: shown as a percentage, passed at or above their target
# (the grounding rule, kvcap.metrics.grounding), e.g. the demo's diversity, 106% of the references'.
SHARES = {"diversity_share": "Diversity, share of the references'"}


def card_metrics() -> dict[str, str]:
    """What a card may report (eval row key -> shown name), in this order: every registered
    metric (kvcap.records.metrics), the shares of the references' (SHARES) and the eval loss."""
    return {**labels(), **SHARES, "loss": "eval loss"}


def shown_value(key: str, value: float) -> str:
    """`106%` for a share of the references', `0.8992` for any other metric."""
    return f"{value:.0%}" if key in SHARES else f"{value:.4f}"


def target_row(key: str, target: float, value: float | None) -> str:
    """One row of the card's targets table: metric, target, this model's verdict."""
    if key in SHARES:
        rule, ok = f">= {target:.0%}", None if value is None else value >= target
    else:
        rule, ok = f"> {target:g}", None if value is None else passes_target(value, target)
    verdict = "-" if ok is None else ("pass" if ok else "fail")
    return f"| {card_metrics().get(key, key)} | {rule} | {verdict} |"


def base_models(spec: Any) -> list[str]:
    """The backbones' hub ids (tiny random ones and local folders without a hub name are left out)."""
    from kvcap.model.backbone import ModelConfigError, read_config_json

    out = []
    for part in (spec.vision, spec.llm):
        model_id = str(part.id)
        if is_tiny(model_id):
            continue
        if part.ref or Path(model_id).expanduser().exists():
            try:  # the card names the hub model a local folder came from, when its config.json says
                named = str(read_config_json(part.ref["path"] if part.ref else model_id).get("_name_or_path") or "")
            except ModelConfigError:
                named = ""
            model_id = named if named.count("/") == 1 and not Path(named).exists() else ""
        if model_id:
            out.append(model_id)
    return out


def build_card(spec: Any, facts: dict[str, Any] | None = None):
    """A `huggingface_hub.ModelCard` for checkpoint `spec`."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    facts = dict(facts or {})
    name = str(facts.get("name") or f"kvcap {spec.projector.name} captioner")
    shown = card_metrics()
    metrics = {k: v for k, v in (facts.get("metrics") or {}).items() if k in shown and isinstance(v, (int, float))}
    dataset = str(facts.get("dataset") or "unknown")
    results = [
        EvalResult(task_type=TASK, task_name="Korean video captioning", dataset_type=dataset, dataset_name=dataset,
                   dataset_split=str(facts.get("split") or "val"), metric_type=key, metric_name=shown[key],
                   metric_value=round(float(value), 4))
        for key, value in metrics.items()
    ]
    tags = ["kvcap", "video-captioning", "korean", "llava", f"projector-{spec.projector.name}"]
    if is_tiny(spec.vision.id) or is_tiny(spec.llm.id):
        tags.append("tiny-random-backbones")
    data = ModelCardData(
        base_model=base_models(spec) or None, library_name=LIBRARY, language=["ko"], pipeline_tag=TASK, tags=tags,
        model_name=name if results else None, eval_results=results or None,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(spec, name, facts, metrics)}")


def write_card(directory: str | Path, spec: Any, facts: dict[str, Any] | None = None) -> Path:
    """Write DIR/README.md."""
    from kvcap.fsutil import atomic_write_text

    target = Path(directory) / "README.md"
    atomic_write_text(target, str(build_card(spec, facts)))
    return target


def _backbone_line(what: str, part: Any) -> str:
    where = "bundled in this folder" if part.bundled else (
        f"referenced at `{part.ref['path']}` (checked by fingerprint at load; `kvcap export --bundle` copies it in)"
        if part.ref else "loaded by id")
    return f"- {what}: `{part.id}` ({where})"


def _body(spec: Any, name: str, facts: dict[str, Any], metrics: dict[str, float]) -> str:
    lines = [f"# {name}", ""]
    lines += [*facts.get("notes", []), ""] if facts.get("notes") else []
    lines += ["A Korean video captioner built with kvcap: frozen vision tower -> "
              f"`{spec.projector.name}` projector -> LLM.", ""]
    lines += ["## Model", "", _backbone_line("Vision", spec.vision), _backbone_line("LLM", spec.llm)]
    lines.append(f"- LLM weights: {spec.llm.quantization}"
                 + ("; trained in full" if spec.llm.trained_full else "")
                 + (f"; LoRA r={spec.lora['r']} alpha={spec.lora['alpha']}" if spec.lora else ""))
    lines += ["", "## Projector", "", f"- `{spec.projector.name}`: {spec.projector.num_visual_tokens} visual tokens per clip",
              f"- arguments: `{spec.projector.config}`"]
    lines += ["", "## Frames", "", f"{spec.frames} frames per clip, sampled at the centres of equal segments.",
              f"Prompt: `{spec.prompt}`"]
    lines += ["", "## Data", "", str(facts.get("data") or f"Trained on `{facts.get('dataset') or 'unknown'}`.")]
    if facts.get("recipe"):
        lines += ["", "## Recipe", "", *[f"- {line}" for line in facts["recipe"]]]
    lines += ["", "## Evaluation", ""]
    shown = card_metrics()
    if metrics:
        lines += ["| metric | value |", "|---|---|", *[f"| {shown[k]} | {shown_value(k, v)} |" for k, v in metrics.items()]]
    else:
        lines.append("No evaluation recorded with this checkpoint.")
    targets = facts.get("targets") or {}
    if targets:
        lines += ["", "## Targets", "", "| metric | target | this model |", "|---|---|---|"]
        lines += [target_row(key, target, metrics.get(key)) for key, target in targets.items()]
    gen = spec.generation or {}
    lines += ["", "## How to caption", "", "```bash", "kvcap caption ./videos --checkpoint THIS_FOLDER -o captions/", "```", "",
              "Decoding uses this checkpoint's own settings unless you set them: "
              + ", ".join(f"{k} {v}" for k, v in gen.items() if k in ("max_new_tokens", "num_beams", "repetition_penalty"))
              + "."]
    return "\n".join(lines) + "\n"


def run_facts(cfg: Any, stage: int, row: dict[str, Any] | None, run_path: str | Path) -> dict[str, Any]:
    """What the trainer knows about a best/ checkpoint: its eval row, data, recipe and targets."""
    return training_facts(cfg.train, cfg.data.manifest, cfg.score, stage, row, run_path)


def training_facts(train: Any, manifest: str | Path, score: Any, stage: int, row: dict[str, Any] | None,
                   run_path: str | Path) -> dict[str, Any]:
    """`run_facts` from the sections it reads: [train], data.manifest, [score]."""
    stage_cfg = train.stage1 if stage == 1 else train.stage2
    t = train
    metrics = {k: row.get(k) for k in card_metrics() if row and row.get(k) is not None}
    n = (row or {}).get("n")
    return {
        "name": f"{Path(run_path).name} (stage {stage} best)",
        "metrics": metrics,
        "split": "val",
        "dataset": str(manifest),
        "data": f"Manifest `{manifest}`: the `train` split for training; "
                f"{n if n is not None else 'the'} `val` clips scored for these numbers.",
        "recipe": [
            f"stage {stage}: projector {stage_cfg.projector}, LLM {stage_cfg.llm}, lr {stage_cfg.lr:g}, "
            f"{stage_cfg.epochs:g} epochs",
            f"batch {t.batch_size} x {t.grad_accum} accumulation, warmup {t.warmup_ratio:g}, seed {t.seed}",
            f"best/ chosen by {t.best_metric}" + (f" at step {row.get('step')}" if row and row.get("step") is not None else ""),
        ],
        "targets": Targets.from_score_config(score).to_dict(),
    }
