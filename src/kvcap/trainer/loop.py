"""The training loop shared by both stages (accelerate: CPU fp32, GPU bf16, DDP under `accelerate launch`).

    train(cfg, stage=1|2, run_path, resume=False, init=None) -> summary dict

Order of things:
  1. the run directory: fresh (refuses to overwrite), resumed, or stage 2 after stage 1
  2. the model from the config; stage 2 loads stage 1's best projector; the stage's plan
  3. features: the cache is filled for train + val (broken clips reported and skipped)
  4. AdamW + cosine-with-warmup, gradient accumulation, clipping, per-epoch seeded order
  5. per step: a `train` row in metrics.jsonl every `log_every` steps, a checkpoint every
     `save_every` steps; per epoch: eval (metrics row, samples, best/, collapse alarm) + checkpoint
  6. summary.json

Only the main process writes files; every rank runs the same steps (DDP keeps their weights equal).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from kvcap.errors import one_line as _one_line
from kvcap.records import RunSummary, TrainRow
from kvcap.trainer.accel import make_accelerator, memory_mb, weights_digest  # noqa: F401  (bench/gpu.py)
from kvcap.trainer.rundir import RunDir, utc_now
from kvcap.trainer.run_setup import TrainError, truncate_rows  # noqa: F401  (TrainError: re-exported)


class CaptionLoss(nn.Module):
    """`forward(features, captions) -> loss`, so DDP (which hooks `forward`) syncs the gradients."""

    def __init__(self, captioner: nn.Module):
        super().__init__()
        self.captioner = captioner

    def forward(self, features: torch.Tensor, captions: list[str]) -> torch.Tensor:
        return self.captioner.loss(features, captions)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """`kill PID` ends the run like Ctrl-C: state.json says `interrupted`."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def train(
    cfg,
    *,
    stage: int,
    run_path: str | Path,
    resume: bool = False,
    init: str | Path | None = None,
    evaluate: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train `stage` into `run_path`; returns the summary (also written to summary.json)."""
    accelerator = make_accelerator(cfg)
    main = accelerator.is_main_process
    run = RunDir(run_path, writer=main)

    def say(message: str) -> None:
        if main:
            (log or _default_log)(message)

    trainer = _Trainer(cfg, stage=stage, run=run, accelerator=accelerator, say=say, evaluate=evaluate)
    with _sigterm_as_interrupt():
        trainer.prepare(resume=resume, init=init)
        try:
            return trainer.fit()
        except KeyboardInterrupt:
            trainer.finish_state("interrupted", None)
            raise
        except BaseException as exc:
            trainer.finish_state("failed", _one_line(exc))
            raise
        finally:
            run.close()
            if trainer.cache is not None:
                trainer.cache.flush_stats()


def _default_log(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


class _Trainer:
    def __init__(self, cfg, *, stage: int, run: RunDir, accelerator, say, evaluate: bool):
        from kvcap.trainer.stages import stage_config

        self.cfg = cfg
        self.stage = stage
        self.stage_cfg = stage_config(cfg, stage)
        self.run = run
        self.acc = accelerator
        self.say = say
        self.evaluate = evaluate
        self.cache = None
        self.state: dict[str, Any] | None = None
        self.init_path: Path | None = None
        self.bad_clips = 0

    # -- setup ------------------------------------------------------------------------------
    def prepare(self, *, resume: bool, init) -> None:
        """Check the run directory, read the data, build the model, fill the features, set up the
        schedule and position, and write state.json; every rank does the same."""
        from kvcap.trainer.run_setup import check_run

        acc = self.acc
        self.resume = resume
        start = check_run(self.run, self.stage, resume=resume, init=init, say=self.say,
                          main=acc.is_main_process, wait=acc.wait_for_everyone)
        self.init_path = start.init_path
        acc.wait_for_everyone()
        train_items, val_items = self._read_data()  # a bad manifest fails in a second, before the model
        self.captioner = self._build_model(len(train_items), len(val_items))
        self._open_features(train_items, val_items)
        self._schedule()
        self._start_position(resume)
        self._open_state(start.previous, resume)
        acc.wait_for_everyone()

    def _read_data(self):
        """(train clips, val clips) of the manifest."""
        from kvcap.data.manifest import ManifestError, read_manifest

        manifest = self.cfg.data.manifest
        try:
            items = read_manifest(manifest)
        except ManifestError as exc:
            raise TrainError(str(exc)) from None
        train_items = [it for it in items if it.split == "train"]
        val_items = [it for it in items if it.split == "val"]
        if not train_items:
            raise TrainError(f"{manifest}: the training split is empty (no line has \"split\": \"train\")")
        return train_items, val_items

    def _build_model(self, n_train: int, n_val: int):
        """The captioner from the config, stage 2's starting projector, the stage's plan."""
        from accelerate.utils import set_seed

        from kvcap.model.captioner import Captioner
        from kvcap.model.tiny import resolve_model_id
        from kvcap.model.trainable import plan_for_stage
        from kvcap.trainer.stages import describe_stage, load_init_projector

        cfg = self.cfg
        # Tiny backbones are written on first use with their own seed; do that before seeding,
        # so the projector's init never depends on whether they were already on disk.
        for model_id in (cfg.model.vision, cfg.model.llm):
            resolve_model_id(model_id)
        set_seed(cfg.train.seed)
        self.say(f"{self.run.path}: {describe_stage(cfg, self.stage)}, {n_train} train / {n_val} val clips")
        captioner = Captioner.from_config(cfg, device=self.acc.device)
        if self.init_path is not None:
            load_init_projector(captioner, self.init_path)
            self.say(f"stage {self.stage}: starting from the projector of {self.init_path}")
        captioner.apply_plan(plan_for_stage(self.stage_cfg), cfg.lora)
        trainable = captioner.trainable_summary()
        if not sum(trainable.values()):
            raise TrainError(f"train.stage{self.stage}: nothing trains (projector and llm both frozen)")
        self.say("trainable: " + ", ".join(f"{k} {v:,}" for k, v in trainable.items()))
        self.trainable = trainable
        return captioner

    def _open_features(self, train_items, val_items) -> None:
        from kvcap.trainer.features import open_features

        ready = open_features(self.cfg, self.captioner, self.acc, train_items, val_items, say=self.say, bar=_bar)
        if not ready.train_items:
            raise TrainError(f"{self.cfg.data.manifest}: no training clip could be read (all failed, see above)")
        self.source, self.cache, self.bad_clips = ready.source, ready.cache, ready.bad_clips
        self.train_items, self.val_items = ready.train_items, ready.val_items

    def _schedule(self) -> None:
        """Steps per epoch and in all, AdamW + cosine-with-warmup, the model wrapped for DDP."""
        from transformers import get_cosine_schedule_with_warmup

        from kvcap.trainer.features import epoch_order

        t, acc = self.cfg.train, self.acc
        self.world, self.rank = acc.num_processes, acc.process_index
        self.batches_per_epoch = len(epoch_order(len(self.train_items), 0, t.seed, t.batch_size, self.rank, self.world))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / t.grad_accum)
        total = math.ceil(self.stage_cfg.epochs * self.steps_per_epoch)
        if t.max_steps:
            total = min(total, t.max_steps)
        self.total_steps = max(1, total)
        self.num_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.params = [p for p in self.captioner.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=self.stage_cfg.lr, weight_decay=t.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(optimizer, round(t.warmup_ratio * self.total_steps), self.total_steps)
        self.model = acc.prepare_model(CaptionLoss(self.captioner), device_placement=False)
        self.optimizer = acc.prepare_optimizer(optimizer, device_placement=False)
        self.raw_optimizer = optimizer

    def _start_position(self, resume: bool) -> None:
        """Fresh, or restored from the last checkpoint."""
        from kvcap.trainer.evaluate import Evaluator

        self.step, self.epoch, self.batch = 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.best_eval: dict[str, Any] | None = None
        self.last_eval: dict[str, Any] | None = None
        self.elapsed_before = 0.0
        self.collapsed = False
        self.evaluator = Evaluator(self.cfg, log=self.say, device=str(self.acc.device))
        if resume:
            self._restore()
        elif self.rank:
            torch.manual_seed(self.cfg.train.seed + self.rank)  # dropout differs per rank, as in any DDP run

    def _open_state(self, previous: dict[str, Any] | None, resume: bool) -> None:
        from kvcap.config import config_to_toml
        from kvcap.trainer.run_setup import open_state

        cfg = self.cfg
        self.state = open_state(
            self.run, stage=self.stage, resume=resume, previous=previous, config_toml=config_to_toml(cfg),
            projector=cfg.projector.name, total_steps=self.total_steps, epochs=self.stage_cfg.epochs,
            position=dict(step=self.step, epoch=self.epoch, best=self.best, world_size=self.world),
            init_path=self.init_path,
        )

    def _restore(self) -> None:
        from kvcap.trainer.resume import (
            latest_checkpoint,
            load_checkpoint,
            set_rng_state,
        )

        checkpoint = latest_checkpoint(self.run.checkpoints_dir)
        position = load_checkpoint(checkpoint, model=self.captioner, optimizer=self.raw_optimizer, scheduler=self.scheduler)
        if int(position.get("stage", 0)) != self.stage:
            raise TrainError(f"{checkpoint}: is a stage {position.get('stage')} checkpoint, not stage {self.stage}")
        if int(position.get("total_steps", self.total_steps)) != self.total_steps:
            self.say(f"warning: the schedule changed since {checkpoint} ({position.get('total_steps')} -> {self.total_steps} steps)")
        self.step, self.epoch, self.batch = int(position["step"]), int(position["epoch"]), int(position["batch"])
        self.best, self.best_eval, self.last_eval = position.get("best"), position.get("best_eval"), position.get("last_eval")
        self.elapsed_before = float(position.get("elapsed_s", 0.0))
        self.evaluator.previous = position.get("previous_eval")
        if self.rank == 0:
            set_rng_state(position["_rng"])
        else:
            torch.manual_seed(self.cfg.train.seed + 7919 * self.rank + self.step)
        if self.acc.is_main_process:
            for path in (self.run.metrics_path, self.run.samples_path):
                truncate_rows(path, self.stage, self.step)
        self.say(f"resumed from {checkpoint}: step {self.step}/{self.total_steps}, epoch {self.epoch}, batch {self.batch}")

    # -- state --------------------------------------------------------------------------------
    def finish_state(self, status: str, error: str | None) -> None:
        if self.state is None:
            return
        self.state.update(status=status, error=error, step=self.step)
        self.run.write_state(self.state)

    def _position(self, epoch: int, batch: int) -> dict[str, Any]:
        return {"stage": self.stage, "step": self.step, "total_steps": self.total_steps, "epoch": epoch, "batch": batch,
                "best": self.best, "best_eval": self.best_eval, "last_eval": self.last_eval,
                "previous_eval": self.evaluator.previous, "elapsed_s": self._elapsed(),
                "init": str(self.init_path) if self.init_path else None}

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t_start)

    def _save(self, epoch: int, batch: int) -> None:
        from kvcap.trainer.resume import save_checkpoint

        if self.acc.is_main_process:
            save_checkpoint(self.run.checkpoints_dir, model=self.captioner, optimizer=self.raw_optimizer,
                            scheduler=self.scheduler, position=self._position(epoch, batch), keep_last=self.cfg.train.keep_last)
        self.acc.wait_for_everyone()

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """The step loop: micro-batches with gradient accumulation, an optimizer step per group,
        a checkpoint every `save_every` steps; eval and a checkpoint at the end of each epoch."""
        from kvcap.trainer.features import choose_caption, epoch_order

        acc, t = self.acc, self.cfg.train
        self.t_start = time.perf_counter()
        self.loop_s = 0.0  # time in the step loop alone (no eval, no checkpoints): what bench/train.py compares
        self.captioner.train()
        self.bar = _bar(self.total_steps, f"stage {self.stage}", initial=self.step, disable=not acc.is_main_process)
        self.last_log_time, self.clips_since_log = time.perf_counter(), 0
        self.last_state_write = 0.0
        done = self.step >= self.total_steps
        evaluated_at = None
        epoch, resume_batch = self.epoch, self.batch
        while not done and epoch < self.num_epochs:
            order = epoch_order(len(self.train_items), epoch, t.seed, t.batch_size, self.rank, self.world)
            groups = [[self.train_items[i] for i in idx] for idx in order]
            start, resume_batch = resume_batch, 0
            n = len(groups)
            progress_epoch = float(epoch + 1)
            micro_losses: list[float] = []
            clips_in_group = 0
            t_epoch = time.perf_counter()
            batches = self.source.batches(groups[start:], acc.device)
            for index, (features, kept) in zip(range(start, n), batches):
                group_start = (index // t.grad_accum) * t.grad_accum
                group_len = min(t.grad_accum, n - group_start)
                last_micro = index == group_start + group_len - 1
                if kept:  # a group whose clips all failed to decode (live mode) adds nothing
                    captions = [choose_caption(it, epoch) for it in kept]
                    sync = contextlib.nullcontext() if last_micro else acc.no_sync(self.model)
                    with sync:
                        loss = self.model(features, captions)  # (,) mean over caption tokens
                        acc.backward(loss / group_len)
                    micro_losses.append(float(loss.detach()))
                    clips_in_group += len(kept)
                if not last_micro:
                    continue
                progress_epoch = epoch + (index + 1) / n
                self._optimizer_step(micro_losses, clips_in_group, progress_epoch)
                micro_losses, clips_in_group = [], 0
                if self.step >= self.total_steps:
                    done = True
                    break
                if index < n - 1 and self.step % t.save_every == 0:
                    self._save(epoch, index + 1)
            batches.close()  # stop any decoding still running ahead (a break mid-epoch)
            self.loop_s += time.perf_counter() - t_epoch
            done = self._end_epoch(epoch, progress_epoch, n) or done
            evaluated_at = self.step
            epoch += 1
        self.bar.close()
        if evaluated_at is None and self.best is None:
            self._eval(float(self.epoch))
        return self._finish()

    def _optimizer_step(self, micro_losses: list[float], clips: int, progress_epoch: float) -> None:
        """Clip, step, schedule; a `train` row every `log_every` steps; state.json at most once a second."""
        acc, t = self.acc, self.cfg.train
        norm = acc.clip_grad_norm_(self.params, t.max_grad_norm if t.max_grad_norm > 0 else float("inf"))
        self.optimizer.step()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.clips_since_log += clips
        step_loss = sum(micro_losses) / len(micro_losses) if micro_losses else float("nan")
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            stats = torch.tensor([step_loss, float(self.clips_since_log)], device=acc.device)
            stats = acc.reduce(stats, reduction="sum") if self.world > 1 else stats
            now = time.perf_counter()
            row = TrainRow(stage=self.stage, step=self.step, epoch=round(progress_epoch, 4),
                           loss=float(stats[0]) / self.world, lr=lr, grad_norm=float(norm),
                           samples_per_s=round(float(stats[1]) / max(now - self.last_log_time, 1e-9), 3),
                           mem_mb=memory_mb(acc.device), time=utc_now()).to_dict()
            self.run.log_metrics(row)
            self.last_log_time, self.clips_since_log = now, 0
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}")
        self.bar.update(1)
        if time.perf_counter() - self.last_state_write > 1.0:
            self.state.update(step=self.step, epoch=round(progress_epoch, 4))
            self.run.write_state(self.state)
            self.last_state_write = time.perf_counter()

    def _end_epoch(self, epoch: int, progress_epoch: float, n: int) -> bool:
        """End of an epoch (or of training): eval, then a checkpoint after it. True: stop early."""
        if self.source.dropped:  # live decoding: clips that failed this epoch
            first = self.source.dropped[0].reason
            self.say(f"{len(self.source.dropped)} clip(s) failed to decode this epoch and were skipped, e.g. {first}")
            self.bad_clips = max(self.bad_clips, len({b.item.id for b in self.source.dropped}))
            self.source.dropped.clear()
        finished_epoch = math.isclose(progress_epoch, epoch + 1)
        self.epoch, self.batch = (epoch + 1, 0) if finished_epoch else (epoch, int(round((progress_epoch - epoch) * n)))
        self._eval(round(progress_epoch, 4))
        self._save(self.epoch, self.batch)
        if self.collapsed and self.cfg.train.early_stop_on_collapse:
            self.say("early stop: the mode-collapse alarm fired (train.early_stop_on_collapse = true)")
            return True
        return False

    # -- eval -----------------------------------------------------------------------------------
    def _eval(self, epoch_value: float) -> None:
        acc = self.acc
        if acc.is_main_process:
            self._eval_main(epoch_value)
        acc.wait_for_everyone()
        # Everyone learns whether the alarm fired (early stop must be a common decision).
        if acc.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            flag = [self.collapsed, self.best]
            broadcast_object_list(flag, from_process=0)
            self.collapsed, self.best = flag

    def _eval_main(self, epoch_value: float) -> None:
        from kvcap.trainer.evaluate import best_choice, collapse_alarm, record_eval

        captioner = self.captioner
        if not self.evaluate or not self.val_items:
            if not self.val_items and self.evaluate:
                self.say("eval: no val clips (no line has \"split\": \"val\"): best/ is the latest model")
            captioner.save(self.run.best_dir)
            self.best = {"metric": "last", "value": None, "step": self.step}
            self.state.update(best=self.best)
            return
        result = self.evaluator.run(captioner, self.val_items, self.source, epoch=int(epoch_value))
        row = record_eval(self.run, result, self.val_items, stage=self.stage, step=self.step, epoch=epoch_value,
                          say=self.say)
        self.collapsed = row["collapse"]
        if self.collapsed:
            collapse_alarm(self.step, row["collapse_reasons"], self.say)
        choice = best_choice(self.cfg.train.best_metric, result.loss, row, self.best, self.say)
        if choice is not None:
            from kvcap.model.card import run_facts

            metric, value = choice
            captioner.save(self.run.best_dir, card=run_facts(self.cfg, self.stage, row, self.run.path))
            self.best = {"metric": metric, "value": value, "step": self.step}
            self.best_eval = row
            self.say(f"best/ <- step {self.step} ({metric} {'-' if value is None else f'{value:.4f}'})")
        self.last_eval = row
        self.state.update(best=self.best, collapse=row["collapse_reasons"] or None)
        self.run.write_state(self.state)

    # -- the end --------------------------------------------------------------------------------
    def _finish(self) -> dict[str, Any]:
        from accelerate.utils import gather_object

        acc = self.acc
        digests = gather_object([weights_digest(self.captioner)]) if acc.num_processes > 1 else [weights_digest(self.captioner)]
        elapsed = self._elapsed()
        previous = self.run.read_summary() or {}
        stage_times = dict(previous.get("stage_times_s") or {})
        stage_times[str(self.stage)] = round(elapsed, 2)
        projector_params = sum(p.numel() for p in self.captioner.projector.parameters())
        summary = RunSummary(
            name=self.run.name, stage=self.stage, status="finished", projector=self.cfg.projector.name,
            projector_params=projector_params, visual_tokens=int(self.captioner.num_visual_tokens),
            trainable=self.trainable, train_time_s=round(sum(stage_times.values()), 2),
            stage_times_s=stage_times, loop_s=round(getattr(self, "loop_s", 0.0), 3), steps=self.step, total_steps=self.total_steps,
            epochs=self.stage_cfg.epochs, train_clips=len(self.train_items), val_clips=len(self.val_items),
            bad_clips=getattr(self, "bad_clips", 0), best=self.best, best_eval=self.best_eval,
            last_eval=self.last_eval, collapse=bool(self.last_eval and self.last_eval.get("collapse")),
            world_size=acc.num_processes, rank_weight_digests=digests,
            init=str(self.init_path) if self.init_path else None, finished=utc_now(),
        ).to_dict()
        self.run.write_summary(summary)
        self.state.update(status="finished", step=self.step, epoch=self.epoch)
        self.run.write_state(self.state)
        self.say(f"stage {self.stage} finished: {self.step} steps in {elapsed:.1f}s; best/ = {self.run.best_dir}")
        from kvcap.trainer.stage_bests import say_if_worse_than_stage1

        say_if_worse_than_stage1(self.run, self.best, self.stage, self.say)
        acc.wait_for_everyone()
        return summary


def _bar(total: int, desc: str, *, initial: int = 0, disable: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step" if desc.startswith("stage") else "clip",
                disable=disable or not sys.stderr.isatty(), file=sys.stderr, dynamic_ncols=True, leave=False)
