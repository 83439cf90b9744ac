"""A training run's files (see kvcap.trainer.rundir for the directory layout).

    state.json      RunState     replaced atomically while the run goes
    metrics.jsonl   TrainRow / EvalRow, a line each (`kind` tells them apart)
    samples.jsonl   SampleRow, one eval prediction beside its reference
    summary.json    RunSummary   written at the end of each stage

Plus the rules every reader shares: which eval is a run's best (`select_best`), and the
figures of its `kvcap compare` row (`compare_figures`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from kvcap.records import _coerce as c
from kvcap.records.metrics import METRIC_SPECS

RUN_STATUSES = ("running", "finished", "failed", "interrupted")


def _to_dict(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name != "extra"}


@dataclass
class RunState:
    """state.json. Keys kvcap does not model (older or newer files) ride along in `extra`."""

    name: str = ""
    status: str = "unknown"
    pid: int = 0
    host: str = ""
    stage: int | str = ""
    projector: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: float = 0
    epochs: float = 0
    started: str | None = None
    """ISO-8601 UTC."""
    updated: str | None = None
    error: str | None = None
    best: dict[str, Any] | None = None
    """{"metric", "value", "step"} of the best eval so far (None before the first)."""
    resumed: str | None = None
    """ISO-8601 UTC of the last `--resume` (written only when set, as every field below)."""
    world_size: int | None = None
    """Processes training together (DDP ranks)."""
    init: str | None = None
    """The checkpoint whose projector stage 2 started from."""
    stage1_best: str | None = None
    """stage1/best/ of this run, once stage 2 has moved it there."""
    collapse: list[str] | None = None
    """The mode-collapse reasons of the latest eval (None when it was healthy)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys kvcap does not model, as written."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("resumed", "world_size", "init", "stage1_best", "collapse")

    @property
    def best_metric(self) -> str:
        return c.text(c.obj(self.best).get("metric"))

    @property
    def best_value(self) -> float | None:
        return c.num(c.obj(self.best).get("value"))

    @property
    def updated_s(self) -> float | None:
        return c.parse_time(self.updated)

    def to_dict(self) -> dict[str, Any]:
        """The file's keys in order; the trainer's optional facts only when set."""
        body = {k: v for k, v in _to_dict(self).items() if k not in self.OPTIONAL or v is not None}
        return {**body, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str = "") -> "RunState":
        known = {f.name for f in fields(cls)}
        best = data.get("best")
        return cls(
            name=c.text(data.get("name")) or name, status=c.text(data.get("status"), "unknown"),
            pid=c.integer(data.get("pid")), host=c.text(data.get("host")), stage=c.stage(data.get("stage")),
            projector=c.text(data.get("projector")), step=c.integer(data.get("step")),
            total_steps=c.integer(data.get("total_steps")), epoch=c.opt_num(data.get("epoch")) or 0,
            epochs=c.opt_num(data.get("epochs")) or 0, started=c.opt_text(data.get("started")),
            updated=c.opt_text(data.get("updated")), error=c.opt_text(data.get("error")),
            best=best if isinstance(best, dict) else None, resumed=c.opt_text(data.get("resumed")),
            world_size=c.integer(data["world_size"]) if c.num(data.get("world_size")) is not None else None,
            init=c.opt_text(data.get("init")), stage1_best=c.opt_text(data.get("stage1_best")),
            collapse=c.str_list(data["collapse"]) if isinstance(data.get("collapse"), list) else None,
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class TrainRow:
    """A `kind: train` line of metrics.jsonl (every `train.log_every` steps)."""

    KIND: ClassVar[str] = "train"
    stage: int | str
    step: int
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    samples_per_s: float | None = None
    mem_mb: float | None = None
    time: str | None = None
    """ISO-8601 UTC."""

    @property
    def time_s(self) -> float | None:
        return c.parse_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, **_to_dict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainRow | None":
        """The row, or None when `data` is not a train row."""
        if data.get("kind") != cls.KIND or c.num(data.get("step")) is None:
            return None
        return cls(
            stage=c.stage(data.get("stage")), step=c.integer(data.get("step")), epoch=c.num(data.get("epoch")),
            loss=c.num(data.get("loss")), lr=c.num(data.get("lr")), grad_norm=c.num(data.get("grad_norm")),
            samples_per_s=c.num(data.get("samples_per_s")), mem_mb=c.num(data.get("mem_mb")),
            time=data.get("time") if isinstance(data.get("time"), (str, int, float)) else None,
        )


@dataclass
class EvalRow:
    """A `kind: eval` line of metrics.jsonl (one per epoch); also summary.json's `best_eval`."""

    KIND: ClassVar[str] = "eval"
    stage: int | str
    step: int
    epoch: float | None = None
    loss: float | None = None
    meteor: float | None = None
    siglip: float | None = None
    siglip_cosine: float | None = None
    diversity: float | None = None
    ref_diversity: float | None = None
    unique_ratio: float | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    """Registered metrics (kvcap.records.metrics) without a field above, by name; written as
    top-level keys of the line, after `unique_ratio`."""
    collapse: bool = False
    collapse_reasons: list[str] = field(default_factory=list)
    n: int | None = None
    """Clips scored."""
    eval_s: float | None = None
    time: str | None = None
    """ISO-8601 UTC."""

    @property
    def time_s(self) -> float | None:
        return c.parse_time(self.time)

    def metric(self, name: str) -> float | None:
        """The value of `name`: a registered metric or `loss` (what `train.best_metric` names)."""
        if name in _EVAL_FIELDS and (name == "loss" or name in METRIC_SPECS):
            return c.num(getattr(self, name))
        return c.num(self.scores.get(name)) if name in METRIC_SPECS else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND}
        for key, value in _to_dict(self).items():
            if key != "scores":
                out[key] = value
            if key == "unique_ratio":
                out.update(self.scores)
        return out

    @classmethod
    def from_summary(cls, summary: dict[str, Any], **row: Any) -> "EvalRow":
        """The row of a score summary (kvcap.metrics' `ScoreReport.summary`): every registered
        metric's value, the alarm, the clip count; `row` gives stage, step, epoch, loss, eval_s, time."""
        values = {f: summary.get(f) for f in _SUMMARY_FIELDS}
        return cls(**row, **values, scores={m: summary.get(m) for m in METRIC_SPECS if m not in _EVAL_FIELDS},
                   collapse=bool(summary.get("collapse")), collapse_reasons=list(summary.get("collapse_reasons") or []),
                   n=summary.get("n"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalRow | None":
        """The row, or None when `data` is not an eval row (a `kind` other than eval)."""
        if data.get("kind", cls.KIND) != cls.KIND:
            return None
        return cls(
            scores={m: c.num(data.get(m)) for m in METRIC_SPECS if m not in _EVAL_FIELDS and m in data},
            stage=c.stage(data.get("stage")), step=c.integer(data.get("step")), epoch=c.num(data.get("epoch")),
            loss=c.num(data.get("loss")), meteor=c.num(data.get("meteor")), siglip=c.num(data.get("siglip")),
            siglip_cosine=c.num(data.get("siglip_cosine")), diversity=c.num(data.get("diversity")),
            ref_diversity=c.num(data.get("ref_diversity")), unique_ratio=c.num(data.get("unique_ratio")),
            collapse=data.get("collapse") is True, collapse_reasons=c.str_list(data.get("collapse_reasons")),
            n=c.integer(data["n"]) if c.num(data.get("n")) is not None else None, eval_s=c.num(data.get("eval_s")),
            time=data.get("time") if isinstance(data.get("time"), (str, int, float)) else None,
        )


_EVAL_FIELDS = frozenset(f.name for f in fields(EvalRow))
# The score summary's numbers that have a field of their own in an eval row.
_SUMMARY_FIELDS = ("meteor", "siglip", "siglip_cosine", "diversity", "ref_diversity", "unique_ratio")


def higher_is_better(metric: str) -> bool:
    """The direction of `metric` (the metric table's; the eval loss is better lower)."""
    return metric != "loss" and METRIC_SPECS[metric].higher_is_better


@dataclass
class SampleRow:
    """A line of samples.jsonl: one eval prediction beside its reference."""

    stage: int | str
    epoch: float | None
    step: int
    id: str
    video: str
    prediction: str
    reference: str | list[str]

    @property
    def first_reference(self) -> str:
        """The reference to show (the first when there are several)."""
        if isinstance(self.reference, list):
            return str(self.reference[0]) if self.reference else ""
        return self.reference

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleRow":
        reference = data.get("reference")
        return cls(
            stage=c.stage(data.get("stage")), epoch=c.num(data.get("epoch")), step=c.integer(data.get("step")),
            id=str(data.get("id", "")), video=str(data.get("video", "")),
            prediction=str(data.get("prediction", "")),
            reference=[str(r) for r in reference] if isinstance(reference, list) else str(reference or ""),
        )


@dataclass
class RunSummary:
    """summary.json, written when a stage finishes (the facts `kvcap compare` reads)."""

    name: str = ""
    stage: int | str = ""
    status: str = "finished"
    projector: str | None = None
    projector_params: int | None = None
    visual_tokens: int | None = None
    trainable: Any = None
    train_time_s: float | None = None
    """Both stages so far, summed."""
    stage_times_s: dict[str, float] = field(default_factory=dict)
    loop_s: float | None = None
    steps: int | None = None
    total_steps: int | None = None
    epochs: float | None = None
    train_clips: int | None = None
    val_clips: int | None = None
    bad_clips: int | None = None
    best: dict[str, Any] | None = None
    best_eval: dict[str, Any] | None = None
    """The EvalRow (as written) that chose best/."""
    last_eval: dict[str, Any] | None = None
    collapse: bool = False
    world_size: int | None = None
    rank_weight_digests: list[str] = field(default_factory=list)
    init: str | None = None
    finished: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**_to_dict(self), **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        known = {f.name for f in fields(cls)}
        whole = lambda v: int(v) if c.num(v) is not None else None  # noqa: E731
        return cls(
            name=c.text(data.get("name")), stage=c.stage(data.get("stage")), status=c.text(data.get("status"), "finished"),
            projector=c.opt_text(data.get("projector")), projector_params=whole(data.get("projector_params")),
            visual_tokens=whole(data.get("visual_tokens")), trainable=data.get("trainable"),
            train_time_s=c.opt_num(data.get("train_time_s")), stage_times_s=c.obj(data.get("stage_times_s")),
            loop_s=c.opt_num(data.get("loop_s")), steps=whole(data.get("steps")),
            total_steps=whole(data.get("total_steps")), epochs=c.opt_num(data.get("epochs")),
            train_clips=whole(data.get("train_clips")), val_clips=whole(data.get("val_clips")),
            bad_clips=whole(data.get("bad_clips")),
            best=data.get("best") if isinstance(data.get("best"), dict) else None,
            best_eval=data.get("best_eval") if isinstance(data.get("best_eval"), dict) else None,
            last_eval=data.get("last_eval") if isinstance(data.get("last_eval"), dict) else None,
            collapse=data.get("collapse") is True, world_size=whole(data.get("world_size")),
            rank_weight_digests=c.str_list(data.get("rank_weight_digests")), init=c.opt_text(data.get("init")),
            finished=c.opt_text(data.get("finished")),
            extra={k: v for k, v in data.items() if k not in known},
        )


# ---------------------------------------------------------------------------------------------
# Which eval is a run's best
# ---------------------------------------------------------------------------------------------


def is_better(metric: str, value: float | None, best: float | None) -> bool:
    """Whether `value` beats `best` for `metric` (higher is better except for loss)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best if higher_is_better(metric) else value < best


def latest_stage_evals(evals: list[EvalRow]) -> list[EvalRow]:
    """The eval rows of the latest stage (stage 2's best is the run's best once it has one)."""
    if not evals:
        return []
    latest = max(c.stage_number(e.stage) for e in evals)
    return [e for e in evals if c.stage_number(e.stage) == latest]


def best_eval(evals: list[EvalRow], metric: str = "meteor") -> EvalRow | None:
    """The best eval of the latest stage by `metric` (lowest for loss; meteor when the run
    chose by something else, e.g. `last` without val clips)."""
    rows = latest_stage_evals(evals)
    if not rows:
        return None
    metric = metric if metric == "loss" or metric in METRIC_SPECS else "meteor"
    if not higher_is_better(metric):
        return min(rows, key=lambda e: v if (v := e.metric(metric)) is not None else math.inf)
    return max(rows, key=lambda e: v if (v := e.metric(metric)) is not None else -math.inf)


def select_best(summary: RunSummary | None, state: RunState | None, evals: list[EvalRow]) -> EvalRow | None:
    """A run's best eval, the one rule for `kvcap compare`, the TUI run list and compare screen.

    summary.json's `best_eval` when the summary is of the latest stage the rows show; else (a
    stage still training, or no summary yet) the best eval of the latest stage, by the run's
    own `best.metric`.
    """
    latest = max((c.stage_number(e.stage) for e in evals), default=None)
    if summary is not None and summary.best_eval is not None and (latest is None or c.stage_number(summary.stage) >= latest):
        return EvalRow.from_dict(summary.best_eval)
    return best_eval(evals, (state.best_metric if state else "") or "meteor")


@dataclass
class CompareFigures:
    """One run's row of the projector comparison (None = not known yet)."""

    name: str
    projector: str | None
    params: int | None
    visual_tokens: int | None
    metrics: dict[str, float | None]
    """The best eval's value of every registered metric, in table order."""
    train_time_s: float | None
    collapse: bool | None
    """None when the run has no eval yet."""
    stage: int | str | None
    status: str | None


def compare_figures(name: str, summary: RunSummary | None, state: RunState | None, evals: list[EvalRow],
                    config_projector: str = "") -> CompareFigures:
    """Sizes and time from summary.json; metrics and the collapse flag from `select_best`."""
    best = select_best(summary, state, evals)
    return CompareFigures(
        name=name, projector=(summary.projector if summary else None) or (state.projector if state else None) or config_projector or None,
        params=summary.projector_params if summary else None,
        visual_tokens=summary.visual_tokens if summary else None,
        metrics={m: best.metric(m) if best else None for m in METRIC_SPECS},
        train_time_s=summary.train_time_s if summary else None,
        collapse=best.collapse if best else None,
        stage=(state.stage if state and state.stage != "" else None) or (summary.stage if summary else None) or None,
        status=(state.status if state else None) or (summary.status if summary else None),
    )
