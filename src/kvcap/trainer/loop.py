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
import hashlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from kvcap.errors import KvcapError
from kvcap.errors import one_line as _one_line
from kvcap.records import EvalRow, RunSummary, SampleRow, TrainRow
from kvcap.trainer.rundir import RunDir, utc_now


class TrainError(KvcapError, ValueError):
    """A run that cannot start or go on, for a reason the user can fix (one line)."""


class CaptionLoss(nn.Module):
    """`forward(features, captions) -> loss`, so DDP (which hooks `forward`) syncs the gradients."""

    def __init__(self, captioner: nn.Module):
        super().__init__()
        self.captioner = captioner

    def forward(self, features: torch.Tensor, captions: list[str]) -> torch.Tensor:
        return self.captioner.loss(features, captions)


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def make_accelerator(cfg):
    """An Accelerator: CPU fp32 without CUDA; bf16 autocast on GPU (fp16 if asked, or no bf16)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    cuda = torch.cuda.is_available()
    mixed = "no"
    if cuda and cfg.model.dtype in ("auto", "bf16"):
        mixed = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif cuda and cfg.model.dtype == "fp16":
        mixed = "fp16"
    return Accelerator(cpu=not cuda, mixed_precision=mixed,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
    except (ImportError, OSError):  # pragma: no cover - non-Unix
        return 0.0


def weights_digest(model: nn.Module) -> str:
    """sha256 over every trainable tensor's bytes, in name order (DDP ranks must agree)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]




def _truncate_rows(path: Path, stage: int, step: int) -> None:
    """Drop this stage's rows after `step` (logged by a run that died before its next checkpoint)."""
    from kvcap.fsutil import atomic_write_text, read_jsonl

    if not path.is_file():
        return
    rows = read_jsonl(path)
    kept = [r for r in rows if not (int(r.get("stage", 0)) == stage and int(r.get("step", 0)) > step)]
    if len(kept) != len(rows) or path.read_bytes()[-1:] not in (b"\n", b""):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


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
    def _check_run(self, resume: bool, init) -> dict[str, Any] | None:
        """Decide what this invocation does with the run directory; returns the previous state."""
        run, stage = self.run, self.stage
        previous = run.read_state()
        where = run.path
        if previous is not None:
            from kvcap.trainer.rundir import check_not_running, run_status

            check_not_running(previous, where)
            previous = {**previous, "status": run_status(previous)}  # a killed run is not "running"
        if resume:
            if previous is None:
                raise TrainError(f"{where}: nothing to resume (no state.json); start it without --resume")
            if int(previous.get("stage", 0)) != stage:
                raise TrainError(f"{where}: holds stage {previous.get('stage')}, not stage {stage}; "
                                 f"run `kvcap train --stage {stage} --run {run.name}` without --resume to start stage {stage}")
            if previous.get("status") == "finished":
                raise TrainError(f"{where}: stage {stage} already finished; nothing to resume")
            from kvcap.trainer.resume import latest_checkpoint

            if latest_checkpoint(run.checkpoints_dir) is None:
                raise TrainError(f"{where}: no checkpoint in {run.checkpoints_dir} yet; start again without --resume")
            if previous.get("init"):
                self.init_path = Path(previous["init"])
            return previous
        from kvcap.trainer.resume import latest_checkpoint

        prev_stage = int(previous.get("stage", 0)) if previous else 0
        # An attempt at this same stage that died before its first checkpoint has nothing to
        # resume: starting it again is the only way on, so allow it.
        restart = (previous is not None and prev_stage == stage and previous.get("status") != "finished"
                   and latest_checkpoint(run.checkpoints_dir) is None)
        if restart:
            self.say(f"{where}: the last stage {stage} attempt ({previous.get('status')}) left no checkpoint; starting it again")
        elif previous is not None and stage == 1:
            raise TrainError(f"{where}: already holds a run (stage {prev_stage}, {previous.get('status')}); "
                             "use --resume to continue it or --run NEW for another")
        elif prev_stage >= 2:
            raise TrainError(f"{where}: already holds stage 2 ({previous.get('status')}); use --resume or --run NEW")
        if stage != 2:
            return previous
        if init is not None:
            self.init_path = Path(init)
            if prev_stage == 1 and self.acc.is_main_process:
                run.archive_stage(1)  # keep stage 1's best/ and checkpoints beside stage 2's
        elif restart and previous.get("init"):
            self.init_path = Path(previous["init"])
        else:
            if previous is None:
                raise TrainError(f"{where}: no stage 1 here to start stage 2 from; "
                                 "run `kvcap train --stage 1` first or pass --init CHECKPOINT")
            if previous.get("status") != "finished":
                self.say(f"warning: stage 1 of {where} is {previous.get('status')}; starting from its best so far")
            if self.acc.is_main_process:
                run.archive_stage(1)  # best/ -> stage1/best/, checkpoints/ -> stage1/checkpoints/
            self.acc.wait_for_everyone()
            best = run.stage_dir(1) / "best"
            if not (best / "kvcap.json").is_file():
                raise TrainError(f"{where}: stage 1 has no best/ checkpoint yet (did its eval run?); pass --init CHECKPOINT")
            self.init_path = best
        return previous

    def prepare(self, *, resume: bool, init) -> None:
        from accelerate.utils import set_seed
        from transformers import get_cosine_schedule_with_warmup

        from kvcap.config import config_to_toml
        from kvcap.data.manifest import ManifestError, read_manifest
        from kvcap.model.captioner import Captioner
        from kvcap.model.trainable import plan_for_stage
        from kvcap.trainer.features import epoch_order
        from kvcap.trainer.stages import describe_stage, load_init_projector

        cfg, acc = self.cfg, self.acc
        self.resume = resume
        previous = self._check_run(resume, init)
        acc.wait_for_everyone()

        # Data first: a bad manifest should fail in a second, not after loading the model.
        try:
            items = read_manifest(cfg.data.manifest)
        except ManifestError as exc:
            raise TrainError(str(exc)) from None
        train_items = [it for it in items if it.split == "train"]
        val_items = [it for it in items if it.split == "val"]
        if not train_items:
            raise TrainError(f"{cfg.data.manifest}: the training split is empty (no line has \"split\": \"train\")")

        # Tiny backbones are written on first use with their own seed; do that before seeding,
        # so the projector's init never depends on whether they were already on disk.
        from kvcap.model.tiny import resolve_model_id

        for model_id in (cfg.model.vision, cfg.model.llm):
            resolve_model_id(model_id)
        set_seed(cfg.train.seed)
        self.say(f"{self.run.path}: {describe_stage(cfg, self.stage)}, {len(train_items)} train / {len(val_items)} val clips")
        captioner = Captioner.from_config(cfg, device=acc.device)
        if self.init_path is not None:
            load_init_projector(captioner, self.init_path)
            self.say(f"stage {self.stage}: starting from the projector of {self.init_path}")
        captioner.apply_plan(plan_for_stage(self.stage_cfg), cfg.lora)
        trainable = captioner.trainable_summary()
        if not sum(trainable.values()):
            raise TrainError(f"train.stage{self.stage}: nothing trains (projector and llm both frozen)")
        self.say("trainable: " + ", ".join(f"{k} {v:,}" for k, v in trainable.items()))
        self.captioner = captioner
        self.trainable = trainable

        # Features (every rank fills its local share of the cache, then all read all of it).
        self.source, train_items, val_items = self._features(captioner, train_items, val_items)
        if not train_items:
            raise TrainError(f"{cfg.data.manifest}: no training clip could be read (all failed, see above)")
        self.train_items, self.val_items = train_items, val_items

        # Schedule.
        t = cfg.train
        self.world, self.rank = acc.num_processes, acc.process_index
        self.batches_per_epoch = len(epoch_order(len(train_items), 0, t.seed, t.batch_size, self.rank, self.world))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / t.grad_accum)
        total = math.ceil(self.stage_cfg.epochs * self.steps_per_epoch)
        if t.max_steps:
            total = min(total, t.max_steps)
        self.total_steps = max(1, total)
        self.num_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        params = [p for p in captioner.parameters() if p.requires_grad]
        self.params = params
        optimizer = torch.optim.AdamW(params, lr=self.stage_cfg.lr, weight_decay=t.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(optimizer, round(t.warmup_ratio * self.total_steps), self.total_steps)
        self.model = acc.prepare_model(CaptionLoss(captioner), device_placement=False)
        self.optimizer = acc.prepare_optimizer(optimizer, device_placement=False)
        self.raw_optimizer = optimizer

        # Position: fresh, or restored from the last checkpoint.
        self.step, self.epoch, self.batch = 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.best_eval: dict[str, Any] | None = None
        self.last_eval: dict[str, Any] | None = None
        self.elapsed_before = 0.0
        self.collapsed = False
        from kvcap.trainer.evaluate import Evaluator

        self.evaluator = Evaluator(cfg, log=self.say, device=str(acc.device))
        if resume:
            self._restore()
        elif self.rank:
            torch.manual_seed(cfg.train.seed + self.rank)  # dropout differs per rank, as in any DDP run

        # The run directory.
        run = self.run
        run.create()
        if not resume:
            run.write_config(config_to_toml(cfg))
            if run.writer:  # a restarted attempt's rows go; an earlier stage's stay
                for path in (run.metrics_path, run.samples_path):
                    _truncate_rows(path, self.stage, 0)
        self.state = run.new_state(stage=self.stage, projector=cfg.projector.name, total_steps=self.total_steps,
                                   epochs=self.stage_cfg.epochs, previous=previous)
        if resume and previous:
            self.state["started"] = previous.get("started", self.state["started"])
            self.state["resumed"] = utc_now()
        self.state.update(step=self.step, epoch=self.epoch, best=self.best, world_size=self.world,
                          init=str(self.init_path) if self.init_path else None)
        if self.stage == 2 and self.init_path is not None and self.init_path.parent.name == "stage1":
            self.state["stage1_best"] = str(self.init_path)
        run.write_state(self.state)
        acc.wait_for_everyone()

    def _features(self, captioner, train_items, val_items):
        from kvcap.trainer.features import FeatureSource, fill_cache

        cfg, acc = self.cfg, self.acc
        common = dict(frames=captioner.frames, size=captioner.image_size, backend=cfg.video.backend)
        if not cfg.data.use_cache:
            self.say("features: no cache (data.use_cache = false): decoding and encoding every step")
            return (FeatureSource(encode=captioner.encode, workers=cfg.data.num_workers, **common), train_items, val_items)
        from kvcap.data.cache import FeatureCache

        cache = FeatureCache(cfg.data.cache_dir, captioner.vision.key)
        self.cache = cache
        everything = list(train_items) + list(val_items)
        local_rank = acc.local_process_index
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes if acc.num_processes else 1))
        mine = everything[local_rank::max(1, local_world)]
        bar = _bar(len(mine), "features", disable=not acc.is_main_process)
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        report = fill_cache(mine, captioner.encode, cache, batch_size=cfg.train.batch_size,
                            workers=cfg.data.num_workers, progress=progress, **common)
        bar.close()
        acc.wait_for_everyone()
        # Every rank decides the same way: a clip trains iff its features are in the cache now.
        ok = {it.id for it in everything if _safe_contains(cache, it, captioner.frames)}
        bad = [it for it in everything if it.id not in ok]
        reasons = {b.item.id: b.reason for b in report.bad}
        self.bad_clips = len(bad)
        self.say(f"features: {report.cached_before} cached, {report.encoded} encoded in {report.seconds:.1f}s"
                 + (f", {len(bad)} bad clip(s) skipped" if bad else "") + f" ({cfg.data.cache_dir})")
        for it in bad[:10]:
            self.say(f"  skipped {it.id}: {reasons.get(it.id, f'{it.video}: unreadable')}")
        if len(bad) > 10:
            self.say(f"  ... and {len(bad) - 10} more skipped")
        source = FeatureSource(cache=cache, **common)
        return source, [it for it in train_items if it.id in ok], [it for it in val_items if it.id in ok]

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
                _truncate_rows(path, self.stage, self.step)
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
        from kvcap.trainer.features import choose_caption, epoch_order

        acc, t = self.acc, self.cfg.train
        self.t_start = time.perf_counter()
        self.loop_s = 0.0  # time in the step loop alone (no eval, no checkpoints): what bench/train.py compares
        self.captioner.train()
        bar = _bar(self.total_steps, f"stage {self.stage}", initial=self.step, disable=not acc.is_main_process)
        last_log_time, clips_since_log = time.perf_counter(), 0
        last_state_write = 0.0
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
                # -- optimizer step ------------------------------------------------------
                norm = acc.clip_grad_norm_(self.params, t.max_grad_norm if t.max_grad_norm > 0 else float("inf"))
                self.optimizer.step()
                lr = self.scheduler.get_last_lr()[0]
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                clips_since_log += clips_in_group
                step_loss = sum(micro_losses) / len(micro_losses) if micro_losses else float("nan")
                micro_losses, clips_in_group = [], 0
                progress_epoch = epoch + (index + 1) / n
                if self.step % t.log_every == 0 or self.step == self.total_steps:
                    stats = torch.tensor([step_loss, float(clips_since_log)], device=acc.device)
                    stats = acc.reduce(stats, reduction="sum") if self.world > 1 else stats
                    now = time.perf_counter()
                    row = TrainRow(stage=self.stage, step=self.step, epoch=round(progress_epoch, 4),
                                   loss=float(stats[0]) / self.world, lr=lr, grad_norm=float(norm),
                                   samples_per_s=round(float(stats[1]) / max(now - last_log_time, 1e-9), 3),
                                   mem_mb=memory_mb(acc.device), time=utc_now()).to_dict()
                    self.run.log_metrics(row)
                    last_log_time, clips_since_log = now, 0
                    bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}")
                bar.update(1)
                if time.perf_counter() - last_state_write > 1.0:
                    self.state.update(step=self.step, epoch=round(progress_epoch, 4))
                    self.run.write_state(self.state)
                    last_state_write = time.perf_counter()
                if self.step >= self.total_steps:
                    done = True
                    break
                if index < n - 1 and self.step % t.save_every == 0:
                    self._save(epoch, index + 1)
            batches.close()  # stop any decoding still running ahead (a break mid-epoch)
            self.loop_s += time.perf_counter() - t_epoch
            # -- end of epoch (or of training): eval, then a checkpoint after it ----------------
            if self.source.dropped:  # live decoding: clips that failed this epoch
                first = self.source.dropped[0].reason
                self.say(f"{len(self.source.dropped)} clip(s) failed to decode this epoch and were skipped, e.g. {first}")
                self.bad_clips = max(getattr(self, "bad_clips", 0), len({b.item.id for b in self.source.dropped}))
                self.source.dropped.clear()
            finished_epoch = math.isclose(progress_epoch, epoch + 1)
            self.epoch, self.batch = (epoch + 1, 0) if finished_epoch else (epoch, int(round((progress_epoch - epoch) * n)))
            self._eval(round(progress_epoch, 4))
            evaluated_at = self.step
            self._save(self.epoch, self.batch)
            if self.collapsed and t.early_stop_on_collapse:
                self.say("early stop: the mode-collapse alarm fired (train.early_stop_on_collapse = true)")
                done = True
            epoch += 1
        bar.close()
        if evaluated_at is None and self.best is None:
            self._eval(float(self.epoch))
        return self._finish()

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
        from kvcap.records import is_better

        t = self.cfg.train
        captioner = self.captioner
        if not self.evaluate or not self.val_items:
            if not self.val_items and self.evaluate:
                self.say("eval: no val clips (no line has \"split\": \"val\"): best/ is the latest model")
            captioner.save(self.run.best_dir)
            self.best = {"metric": "last", "value": None, "step": self.step}
            self.state.update(best=self.best)
            return
        result = self.evaluator.run(captioner, self.val_items, self.source, epoch=int(epoch_value))
        s = result.summary
        row = EvalRow(stage=self.stage, step=self.step, epoch=epoch_value, loss=result.loss,
                      meteor=s.get("meteor"), siglip=s.get("siglip"), siglip_cosine=s.get("siglip_cosine"),
                      diversity=s.get("diversity"), ref_diversity=s.get("ref_diversity"),
                      unique_ratio=s.get("unique_ratio"), collapse=bool(s.get("collapse")),
                      collapse_reasons=list(s.get("collapse_reasons") or []), n=s.get("n"),
                      eval_s=round(result.seconds, 2), time=utc_now()).to_dict()
        self.run.log_metrics(row)
        by_id = {it.id: it for it in self.val_items}
        for clip_id, prediction in result.predictions.items():
            item = by_id[clip_id]
            self.run.log_sample(SampleRow(stage=self.stage, epoch=epoch_value, step=self.step, id=clip_id,
                                          video=str(item.video), prediction=prediction,
                                          reference=item.references[0]).to_dict())
        self.run.write_predictions([
            {"id": clip_id, "video": str(by_id[clip_id].video), "caption": text, "stage": self.stage, "step": self.step}
            for clip_id, text in result.predictions.items()
        ])
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        self.say(f"eval step {self.step}: loss {fmt(result.loss)}  METEOR {fmt(row['meteor'])}  "
                 f"SigLIP2 {fmt(row['siglip'])}  Diversity {fmt(row['diversity'])}  ({result.seconds:.1f}s, {s.get('n')} clips)")
        if result.failed:
            self.say(f"eval: {len(result.failed)} clip(s) not captioned, e.g. {result.failed[0]}")
        self.collapsed = row["collapse"]
        if self.collapsed:
            self._alarm(row["collapse_reasons"])
        metric = t.best_metric
        value = result.loss if metric == "loss" else row.get(metric)
        if value is None:
            self.say(f"eval: {metric} unavailable; best/ is chosen by eval loss this time")
            metric, value = "loss", result.loss
        current = self.best.get("value") if self.best and self.best.get("metric") == metric else None
        if self.best is None or is_better(metric, value, current):
            from kvcap.model.card import run_facts

            captioner.save(self.run.best_dir, card=run_facts(self.cfg, self.stage, row, self.run.path))
            self.best = {"metric": metric, "value": value, "step": self.step}
            self.best_eval = row
            self.say(f"best/ <- step {self.step} ({metric} {fmt(value)})")
        self.last_eval = row
        self.state.update(best=self.best, collapse=row["collapse_reasons"] or None)
        self.run.write_state(self.state)

    def _alarm(self, reasons: list[str]) -> None:
        import click

        banner = "!" * 72
        message = "\n".join([banner, f"MODE COLLAPSE ALARM at step {self.step}:"] + [f"  - {r}" for r in reasons] + [banner])
        if sys.stderr.isatty():
            click.secho(message, fg="red", bold=True, err=True)
        else:
            self.say(message)

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
        acc.wait_for_everyone()
        return summary


def _safe_contains(cache, item, frames: int) -> bool:
    try:
        return cache.contains(item.video, frames)
    except OSError:
        return False


def _bar(total: int, desc: str, *, initial: int = 0, disable: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step" if desc.startswith("stage") else "clip",
                disable=disable or not sys.stderr.isatty(), file=sys.stderr, dynamic_ncols=True, leave=False)
