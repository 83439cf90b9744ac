"""The training recipe shared by both stages (accelerate: CPU fp32, GPU bf16, DDP under `accelerate launch`).

    train(cfg, splits, stage=1|2, run_path, resume=False, init=None) -> summary dict
    (splits: the manifest's (train, val) clips, kvcap.data.manifest.read_splits; the command reads
    and checks the manifest before the run folder is made)

The recipe's lifecycle, in this order. `setup` is one call per step, each returning what it
made and given the section of the config it needs, and nothing more:

    setup(cfg, splits, resume, init)
        _setup_run / check_run     the run directory: fresh (refuses to overwrite), resumed, or stage 2 after stage 1
        stage_captioner            the captioner, seeded; stage 2 starts from stage 1's best projector; the plan (stages.py)
        open_features              the feature cache filled for train + val, broken clips left out (features.py)
        plan_schedule              steps per epoch and in all (steps.py)
        make_optimizer             AdamW, the model wrapped for DDP, cosine LR with warmup (steps.py)
        Evaluator                  the eval's sections ([score], [generation], ...) (evaluate.py)
        start_position             step 0, or the last checkpoint: weights, optimizer, scheduler, RNG, data position (resume.py)
        open_state                 state.json (a RunState) written; rows logged after the position dropped (rundir.py)
    train()                per step: a `train` row every `log_every` steps, a checkpoint every `save_every`;
                           per epoch: eval (metrics row, samples, best/, collapse alarm) + checkpoint;
                           at the end summary.json
    save_checkpoint()      step-<N>/: trainable weights, optimizer, scheduler, RNG, TrainPosition
    cleanup(status)        state.json's last word (finished, interrupted, failed), files closed

Only the main process writes files; every rank runs the same steps (DDP keeps their weights equal).
The run's state is typed: kvcap.records.TrainPosition (where it stands; a checkpoint's
position.json) and kvcap.records.RunState (state.json, what the TUI reads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

from kvcap.config import config_to_toml
from kvcap.errors import one_line
from kvcap.records import RunSummary, utc_now
from kvcap.trainer.accel import launch_state, make_accelerator, weights_digest
from kvcap.trainer.evaluate import EvalSettings, Evaluator, eval_epoch
from kvcap.trainer.features import FeatureSpec, choose_caption, epoch_order, open_features
from kvcap.trainer.resume import start_position
from kvcap.trainer.rundir import RunDir, check_run, open_state
from kvcap.trainer.stages import describe_stage, stage_captioner, stage_config
from kvcap.trainer.steps import StepLog, default_log, make_optimizer, plan_schedule, progress_bar, sigterm_as_interrupt


def train(cfg, splits: tuple[list, list], *, stage: int, run_path: str | Path, resume: bool = False,
          init: str | Path | None = None, evaluate: bool = True,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train `stage` on `splits` (train clips, val clips) into `run_path`; returns the summary
    (also written to summary.json)."""
    # Which process this is comes from the launch, not from the config: rank 0 writes the run
    # directory and speaks for all.
    main = launch_state().is_main_process

    def say(message: str) -> None:
        if main:
            (log or default_log)(message)

    recipe = TrainRecipe(stage=stage, run=RunDir(run_path, writer=main), say=say, evaluate=evaluate)
    with sigterm_as_interrupt():
        recipe.setup(cfg, splits, resume=resume, init=init)
        status, error = "finished", None
        try:
            return recipe.train()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException as exc:
            status, error = "failed", one_line(exc)
            raise
        finally:
            recipe.cleanup(status, error)


class TrainRecipe:
    """One stage of one run: `setup`, `train`, `save_checkpoint`, `cleanup` (see the module doc)."""

    def __init__(self, *, stage: int, run: RunDir, say: Callable[[str], None], evaluate: bool):
        self.stage = stage
        self.run = run
        self.say = say
        self.evaluate = evaluate

    # -- setup ------------------------------------------------------------------------------
    def setup(self, cfg, splits: tuple[list, list], *, resume: bool, init) -> None:
        """Everything before the first step, in this order; every rank does the same. Each step is
        one call that returns what it made, given the section of `cfg` it needs, chosen here: the
        config goes no deeper than this method."""
        start = self._setup_run(resume, init)  # the run directory is checked before anything loads
        self.acc = make_accelerator(cfg.model.dtype)
        self.settings = cfg.train  # what the step loop reads: seed, batch, cadences, keep_last, ...
        self.stage_cfg = stage_config(cfg.train, self.stage)
        train_items, val_items = splits
        self.say(f"{self.run.path}: {describe_stage(self.stage, self.stage_cfg)}, "
                 f"{len(train_items)} train / {len(val_items)} val clips")
        self.captioner, self.trainable = stage_captioner(cfg.model, cfg.projector, cfg.generation, cfg.lora, cfg.train,
                                                         self.stage, self.stage_cfg, self.acc.device, start.init_path,
                                                         say=self.say)
        self.features = open_features(FeatureSpec(
            use_cache=cfg.data.use_cache, cache_dir=cfg.data.cache_dir, backend=cfg.video.backend,
            workers=cfg.data.num_workers, batch_size=cfg.train.batch_size, manifest=cfg.data.manifest),
            self.captioner, self.acc, train_items, val_items, say=self.say, bar=progress_bar)
        self.schedule = plan_schedule(len(self.features.train_items), epochs=self.stage_cfg.epochs,
                                      batch_size=cfg.train.batch_size, grad_accum=cfg.train.grad_accum,
                                      max_steps=cfg.train.max_steps, rank=self.acc.process_index,
                                      world=self.acc.num_processes)
        self.model, self.optimizer, self.raw_optimizer, self.lr_scheduler = make_optimizer(
            self.captioner, self.acc, lr=self.stage_cfg.lr, train=cfg.train, total_steps=self.schedule.total_steps)
        self.evaluator = Evaluator(EvalSettings(score=cfg.score, generation=cfg.generation, train=cfg.train,
                                                manifest=cfg.data.manifest, caption_batch=cfg.caption.batch_size),
                                   log=self.say, device=str(self.acc.device))
        self.position = start_position(self.run.checkpoints_dir, self.stage, self.schedule, start.init_path,
                                       resume=resume, model=self.captioner, optimizer=self.raw_optimizer,
                                       scheduler=self.lr_scheduler, seed=cfg.train.seed, say=self.say)
        self.evaluator.previous = self.position.previous_eval  # the collapse rule's last summary (None when fresh)
        p = self.position
        self.state = open_state(self.run, stage=self.stage, resume=resume, previous=start.previous,
                                config_toml=config_to_toml(cfg), projector=cfg.projector.name,
                                total_steps=p.total_steps, epochs=self.stage_cfg.epochs, step=p.step, epoch=p.epoch,
                                best=p.best, world_size=self.schedule.world, init_path=start.init_path)
        self.acc.wait_for_everyone()

    def _setup_run(self, resume: bool, init):
        """What this invocation does with the run directory (kvcap.trainer.rundir.RunStart)."""
        process = launch_state()
        start = check_run(self.run, self.stage, resume=resume, init=init, say=self.say,
                          main=process.is_main_process, wait=process.wait_for_everyone)
        process.wait_for_everyone()
        return start

    # -- train --------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Epochs of steps from where the position stands; eval + checkpoint after each; the summary."""
        p = self.position
        self.captioner.train()
        log = StepLog(progress_bar(p.total_steps, f"stage {self.stage}", initial=p.step,
                                   disable=not self.acc.is_main_process), elapsed_before=p.elapsed_s)
        done = p.step >= p.total_steps
        evaluated = False
        epoch, start_batch = p.epoch, p.batch
        while not done and epoch < self.schedule.num_epochs:
            done = self._train_epoch(epoch, start_batch, log)
            start_batch, evaluated = 0, True
            epoch += 1
        log.bar.close()
        if not evaluated and p.best is None:
            self._eval(float(p.epoch))
        return self._finish(log)

    def _train_epoch(self, epoch: int, start: int, log: StepLog) -> bool:
        """Micro-batches from `start` with gradient accumulation, an optimizer step per group, a
        checkpoint every `save_every` steps; eval and a checkpoint at the end. True: training is done."""
        acc, t, s, p = self.acc, self.settings, self.schedule, self.position
        items = self.features.train_items
        groups = [[items[i] for i in idx] for idx in epoch_order(len(items), epoch, t.seed, t.batch_size, s.rank, s.world)]
        n, done = len(groups), False
        progress_epoch = float(epoch + 1)
        micro_losses: list[float] = []
        clips_in_group = 0
        t_epoch = time.perf_counter()
        batches = self.features.source.batches(groups[start:], acc.device)
        for index, (features, kept) in zip(range(start, n), batches):
            group_start = (index // t.grad_accum) * t.grad_accum
            group_len = min(t.grad_accum, n - group_start)
            last_micro = index == group_start + group_len - 1
            if kept:  # a group whose clips all failed to decode (live mode) adds nothing
                captions = [choose_caption(it, epoch) for it in kept]
                with contextlib.nullcontext() if last_micro else acc.no_sync(self.model):
                    loss = self.model(features, captions)  # (,) mean over caption tokens
                    acc.backward(loss / group_len)
                micro_losses.append(float(loss.detach()))
                clips_in_group += len(kept)
            if not last_micro:
                continue
            progress_epoch = epoch + (index + 1) / n
            self._optimizer_step(micro_losses, clips_in_group, progress_epoch, log)
            micro_losses, clips_in_group = [], 0
            if p.step >= p.total_steps:
                done = True
                break
            if index < n - 1 and p.step % t.save_every == 0:
                self.save_checkpoint(epoch, index + 1, log)
        batches.close()  # stop any decoding still running ahead (a break mid-epoch)
        log.loop_s += time.perf_counter() - t_epoch
        return self._end_epoch(epoch, progress_epoch, n, log) or done

    def _optimizer_step(self, micro_losses: list[float], clips: int, progress_epoch: float, log: StepLog) -> None:
        """Clip, step, schedule; a `train` row every `log_every` steps; state.json at most once a second."""
        acc, t, p = self.acc, self.settings, self.position
        params = self.raw_optimizer.param_groups[0]["params"]  # the trainable ones (one AdamW group)
        norm = acc.clip_grad_norm_(params, t.max_grad_norm if t.max_grad_norm > 0 else float("inf"))
        self.optimizer.step()
        lr = self.lr_scheduler.get_last_lr()[0]
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        p.step += 1
        log.clips_since_log += clips
        step_loss = sum(micro_losses) / len(micro_losses) if micro_losses else float("nan")
        if p.step % t.log_every == 0 or p.step == p.total_steps:
            row = log.train_row(acc, self.schedule.world, stage=self.stage, step=p.step, epoch=round(progress_epoch, 4),
                                loss=step_loss, lr=lr, grad_norm=float(norm))
            self.run.log_metrics(row.to_dict())
        log.bar.update(1)
        if time.perf_counter() - log.last_state_write > 1.0:
            self.state.step, self.state.epoch = p.step, round(progress_epoch, 4)
            self.run.write_state(self.state)
            log.last_state_write = time.perf_counter()

    def _end_epoch(self, epoch: int, progress_epoch: float, n: int, log: StepLog) -> bool:
        """End of an epoch (or of training): eval, then a checkpoint after it. True: stop early."""
        source, p = self.features.source, self.position
        if source.dropped:  # live decoding: clips that failed this epoch
            self.say(f"{len(source.dropped)} clip(s) failed to decode this epoch and were skipped, e.g. {source.dropped[0].reason}")
            self.features.bad_clips = max(self.features.bad_clips, len({b.item.id for b in source.dropped}))
            source.dropped.clear()
        finished_epoch = math.isclose(progress_epoch, epoch + 1)
        p.epoch, p.batch = (epoch + 1, 0) if finished_epoch else (epoch, int(round((progress_epoch - epoch) * n)))
        collapsed = self._eval(round(progress_epoch, 4))
        self.save_checkpoint(p.epoch, p.batch, log)
        if collapsed and self.settings.early_stop_on_collapse:
            self.say("early stop: the mode-collapse alarm fired (train.early_stop_on_collapse = true)")
            return True
        return False

    # -- eval -----------------------------------------------------------------------------------
    def _eval(self, epoch_value: float) -> bool:
        """Eval on the main process (rows, samples, best/); every rank learns the best and whether
        the collapse alarm fired (early stop must be a common decision). True: it fired."""
        acc = self.acc
        collapsed = self._eval_main(epoch_value) if acc.is_main_process else False
        acc.wait_for_everyone()
        if acc.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            flag = [collapsed, self.position.best]
            broadcast_object_list(flag, from_process=0)
            collapsed, self.position.best = flag
        return collapsed

    def _eval_main(self, epoch_value: float) -> bool:
        row = eval_epoch(self.evaluator, self.captioner, self.features, self.run, self.position,
                         stage=self.stage, epoch=epoch_value, evaluate=self.evaluate, say=self.say)
        self.state.best = self.position.best
        if row is None:  # no eval: best/ is the latest model
            return False
        self.state.collapse = row["collapse_reasons"] or None
        self.run.write_state(self.state)
        return bool(row["collapse"])

    # -- checkpoints and the end --------------------------------------------------------------
    def save_checkpoint(self, epoch: int, batch: int, log: StepLog) -> None:
        """step-<N>/ at this optimizer-step boundary, the next micro-batch being `batch` of `epoch`."""
        from kvcap.trainer.resume import save_checkpoint

        if self.acc.is_main_process:
            position = dataclasses.replace(self.position, epoch=epoch, batch=batch,
                                           previous_eval=self.evaluator.previous, elapsed_s=log.elapsed())
            save_checkpoint(self.run.checkpoints_dir, model=self.captioner, optimizer=self.raw_optimizer,
                            scheduler=self.lr_scheduler, position=position.to_dict(), keep_last=self.settings.keep_last)
        self.acc.wait_for_everyone()

    def _finish(self, log: StepLog) -> dict[str, Any]:
        """summary.json and the finished state.json."""
        from accelerate.utils import gather_object

        acc, p, data = self.acc, self.position, self.features
        digest = [weights_digest(self.captioner)]
        digests = gather_object(digest) if acc.num_processes > 1 else digest
        elapsed = log.elapsed()
        previous = self.run.run_summary()
        stage_times = dict(previous.stage_times_s if previous else {})
        stage_times[str(self.stage)] = round(elapsed, 2)
        summary = RunSummary(
            name=self.run.name, stage=self.stage, status="finished", projector=self.state.projector,
            projector_params=sum(t.numel() for t in self.captioner.projector.parameters()),
            visual_tokens=int(self.captioner.num_visual_tokens), trainable=self.trainable,
            train_time_s=round(sum(stage_times.values()), 2), stage_times_s=stage_times, loop_s=round(log.loop_s, 3),
            steps=p.step, total_steps=p.total_steps, epochs=self.stage_cfg.epochs, train_clips=len(data.train_items),
            val_clips=len(data.val_items), bad_clips=data.bad_clips, best=p.best, best_eval=p.best_eval,
            last_eval=p.last_eval, collapse=bool(p.last_eval and p.last_eval.get("collapse")),
            world_size=acc.num_processes, rank_weight_digests=digests, init=p.init, finished=utc_now(),
        ).to_dict()
        self.run.write_summary(summary)
        self.state.status, self.state.step, self.state.epoch = "finished", p.step, p.epoch
        self.run.write_state(self.state)
        self.say(f"stage {self.stage} finished: {p.step} steps in {elapsed:.1f}s; best/ = {self.run.best_dir}")
        from kvcap.trainer.stage_bests import say_if_worse_than_stage1

        say_if_worse_than_stage1(self.run, p.best, self.stage, self.say)
        acc.wait_for_everyone()
        return summary

    def cleanup(self, status: str, error: str | None) -> None:
        """state.json's last word when the run did not finish; the logs closed, the cache's stats written."""
        if status != "finished":
            self.state.status, self.state.error, self.state.step = status, error, self.position.step
            self.run.write_state(self.state)
        self.run.close()
        if self.features.cache is not None:
            self.features.cache.flush_stats()
