"""The one training loop: data stream -> model -> loss -> clipped optimizer step, with logging,
atomic checkpoints and exact resume, on one rank or under `paddle.distributed.launch`."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import time

import numpy as np
import paddle
from tqdm import tqdm

from paddle_lm.config import (
    TRANSFORMERS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    rowwise_softmax,
    validate_pretrain,
    validate_train,
)
from paddle_lm.device import set_device, to_tensors
from paddle_lm.errors import Diverged, Interrupted, UserError
from paddle_lm.formats.elmo_files import elmo_from_pretrained, load_elmo_encoder
from paddle_lm.models import STAT_KEYS, build_model
from paddle_lm.models.sampled_softmax import LogUniformSampler, full_softmax_note
from paddle_lm.models.transformer_lm import config_from_pretrained, load_pretrained_weights
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.training import distributed as dist
from paddle_lm.training.amp import MIN_SCALE, LossScaler, resolve_amp
from paddle_lm.training.metrics import LearningWatch, MetricsLog, perplexity
from paddle_lm.training.optim import build_optimizer, clip_grad_norm, load_optimizer_state, optimizer_state
from paddle_lm.training.prefetch import Prefetcher
from paddle_lm.training.rowwise import touched_rows
from paddle_lm.training.run_dir import claim_save_dir
from paddle_lm.training.signals import StopFlag, guard_startup, startup_guard
from paddle_lm.training.sources import make_source
from paddle_lm.weights import fit_state

RNG_SCHEME = ("dropout: paddle.seed(seed + 1000003 * rank + micro) before every micro-step; "
              "softmax samples: numpy default_rng([seed, rank, micro]); "
              "micro = step * gradient_accumulation_steps + k")


def window_loss(stats) -> float:
    """Mean of the forward and (where scored) backward per-token losses of summed STAT_KEYS statistics."""
    fw_sum, fw_n, bw_sum, bw_n = (float(v) for v in stats)
    losses = [fw_sum / fw_n if fw_n else math.nan] + ([bw_sum / bw_n] if bw_n else [])
    return sum(losses) / len(losses)


def _restored_config(prefix: str, side: dict, model_cfg: ModelConfig) -> ModelConfig:
    saved = ModelConfig(**side["model_config"])
    if saved.model != model_cfg.model:
        raise UserError(f"--init_from_ckpt {prefix} holds a {saved.model!r} model but --model is {model_cfg.model!r}")
    return saved


class Trainer:
    """Holds what one run needs; `run()` trains to `total_steps` and returns the last metrics.

    A step is one optimizer step over ``gradient_accumulation_steps`` micro-batches per rank; the data
    position is the global micro-step ``step * accumulation + k``.
    """

    def __init__(self, data: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True):
        validate_train(cfg)
        self.cfg, self.data = cfg, data
        self.rank, self.world = dist.rank_and_world()
        self.progress = progress and self.rank == 0
        self.device = set_device(cfg.device)
        self.amp_dtype, self.amp_note = resolve_amp(cfg.amp, self.device)
        self.scaler = LossScaler() if self.amp_dtype == "float16" else None
        resume = ckpt.resolve_resume(cfg.init_from_ckpt, cfg.save_dir)
        side = ckpt.read_sidecar(resume) if resume else None
        if side is not None and side.get("encoder_only"):
            raise UserError(f"--init_from_ckpt {resume} is an ELMo encoder without training state "
                            f"({ckpt.describe_source(side)}); start a run from it with --init_from_pretrained {resume}")
        dist.init(self.world)
        guard_startup()  # again, in case Paddle's distributed start-up replaced the handler
        self.writer, self.prefetch = ckpt.BackgroundWriter(), None
        self.lock = claim_save_dir(cfg, resume, self.rank, self.world)  # held until close()
        try:
            self._build(data, model_cfg, cfg, resume, side)
        except BaseException:
            self.close(failing=True)
            raise

    def close(self, failing: bool = False) -> None:
        """Finish the checkpoint being written and release the --save_dir lock (rank 0); the run is over. While
        another error is `failing` the run, a write error is not raised over it."""
        if self.prefetch is not None:
            self.prefetch.close()
        try:
            self.writer.wait()
        except BaseException:
            if not failing:
                raise
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def _build(self, data: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, resume: str,
               side: dict | None) -> None:
        pretrained = cfg.init_from_pretrained if not resume else ""  # a resumed run has the weights already
        if resume:
            model_cfg = _restored_config(resume, side, model_cfg)
        elif pretrained and model_cfg.model in TRANSFORMERS:
            model_cfg = config_from_pretrained(pretrained, model_cfg.model)
        elif pretrained:
            pretrained, model_cfg, data = elmo_from_pretrained(pretrained, model_cfg, data)
        validate_pretrain(data, model_cfg, cfg, seq_len_known=True)  # before a tokenizer is trained for nothing
        self.source = make_source(data, cfg, model_cfg.model, resume, side, self.progress)
        if pretrained and model_cfg.model in TRANSFORMERS and model_cfg.vocab_size != self.source.vocab_size:
            raise UserError(f"--tokenizer_dir has {self.source.vocab_size} tokens but the --init_from_pretrained "
                            f"model's vocabulary has {model_cfg.vocab_size}; use the tokenizer it was trained with")
        model_cfg = dataclasses.replace(model_cfg, vocab_size=self.source.vocab_size)
        self.model_cfg = model_cfg
        self.source.open(model_cfg, self.rank, self.world)
        self.accum = cfg.gradient_accumulation_steps
        self.steps_per_epoch = self.source.steps_per_epoch // self.accum
        if self.steps_per_epoch == 0:
            raise UserError(f"--gradient_accumulation_steps {self.accum} exceeds the {self.source.steps_per_epoch} "
                            f"batches of an epoch")
        self.tokens_per_step = self.source.tokens_per_batch * self.accum * self.world
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        warmup = cfg.warmup_steps if cfg.warmup_steps >= 0 else max(1, self.total_steps // 10)
        paddle.seed(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(model_cfg)
        if pretrained and model_cfg.model in TRANSFORMERS:
            load_pretrained_weights(self.model, pretrained)
        elif pretrained:
            load_elmo_encoder(self.model, pretrained)
        self.pretrained = pretrained
        self.sampler = None
        if not cfg.n_negative_samples and model_cfg.model not in TRANSFORMERS:
            directions = 2 if model_cfg.model == "elmo" else 1
            note = full_softmax_note(self.source.tokens_per_batch * directions, self.source.vocab_size)
            if note and self.progress:
                print(f"[paddle-lm] note: {note}", flush=True)
        if cfg.n_negative_samples:
            if cfg.n_negative_samples >= self.source.vocab_size:
                raise UserError(f"--n_negative_samples {cfg.n_negative_samples} must be smaller than the "
                                f"vocabulary ({self.source.vocab_size} tokens); use 0 for the full softmax")
            self.sampler = LogUniformSampler(self.source.vocab_size, cfg.n_negative_samples)
        self.opt, self.sched, self.rows = build_optimizer(
            dataclasses.replace(cfg, warmup_steps=warmup), self.model, self.total_steps,
            rowwise=rowwise_softmax(model_cfg, cfg))
        self.prefetch = Prefetcher(self._batch)  # _batch reads self.rows
        self.step, self.state, self.saved, self.resumed_metrics = 0, None, "", {}
        self.learning = LearningWatch(cfg.not_learning_logs)
        self.last_good = resume  # the newest checkpoint known to be complete and finite
        if side is not None:
            self._load(resume, side)
        self.net = paddle.DataParallel(self.model) if self.world > 1 else self.model

    def describe_precision(self) -> str:
        """The start-up line's tail: the softmax's update and the autocast dtype, where they are not the plain
        ones."""
        out = ""
        if self.sampler is not None:
            out += (f"; sampled softmax, {self.sampler.num_samples:,} negatives, "
                    f"{'row-wise' if self.rows is not None else 'dense'} update")
        if self.amp_dtype:
            out += f"; autocast {self.amp_dtype}" + (" with loss scaling" if self.scaler is not None else "")
        return out

    # ----------------------------------------------------------------- checkpoints
    def geometry(self) -> dict:
        return {**self.source.stream.geometry, "world_size": self.world,
                "gradient_accumulation_steps": self.accum}

    def _load(self, prefix: str, side: dict) -> None:
        ours, theirs = self.geometry(), side["geometry"]
        older = {"gradient_accumulation_steps": 1}  # what a sidecar written before the key existed means
        keys = (*self.source.resume_keys, "gradient_accumulation_steps")
        diff = [k for k in keys if ours[k] != theirs.get(k, older.get(k))]
        if diff:
            raise UserError(f"cannot resume {prefix} exactly: " + ", ".join(
                f"{k} was {theirs.get(k)}, now {ours[k]}" for k in diff) + " (use the run's original settings)")
        fit_state(self.model, ckpt.load_params(prefix, side), f"{prefix}.pdparams",
                  ckpt.DAMAGED)
        load_optimizer_state(self.opt, self.rows, self.scaler, ckpt.load_optimizer(prefix, side))
        self.step = int(side["step"])
        guard_startup(f"interrupted before step {self.step + 1}; nothing new was saved")
        self.resumed_metrics = side.get("metrics") or {}
        carried = ckpt.load_carried(prefix, side)
        B = self.cfg.batch_size
        if carried and (self.step * self.accum) % self.source.steps_per_epoch:
            rows = slice(self.rank * B, (self.rank + 1) * B)
            self.state = [paddle.to_tensor(carried[f"s{i}"][rows]) for i in range(len(carried))]

    def save(self, name: str, last: dict | None, wait: bool = False) -> str:
        """Collective: every rank calls it. Rank 0 copies the state to host memory now and writes
        ``{save_dir}/{name}.*`` in the background while training goes on; with `wait` (the final and the
        interrupted save) every rank returns only once it is committed."""
        state = self.state or []
        gathered = dist.gather_rows([t.numpy() for t in state], self.world)
        prefix = os.path.join(self.cfg.save_dir, name)
        if self.rank == 0:
            spe = self.steps_per_epoch
            sidecar = {
                "step": self.step, "epoch": self.step // spe, "step_in_epoch": self.step % spe,
                "tokens_seen": self.step * self.tokens_per_step,
                "model_config": dataclasses.asdict(self.model_cfg), "train_config": dataclasses.asdict(self.cfg),
                "data": self.source.sidecar(),
                "geometry": self.geometry(), "rng": {"scheme": RNG_SCHEME, "seed": self.cfg.seed},
                "metrics": last or {}, "saved_at": time.time(),
            }
            params = ckpt.host_state(self.model.state_dict())
            opt = ckpt.host_state(optimizer_state(self.opt, self.rows, self.scaler))
            carried = {f"s{i}": a for i, a in enumerate(gathered)}
            step, save_dir, keep = self.step, self.cfg.save_dir, self.cfg.keep_last

            def write() -> None:
                ckpt.save_checkpoint(prefix, params, opt, carried, sidecar)
                if name != "final":
                    ckpt.prune(save_dir, keep, newest=step)

            self.writer.submit(write)
        self.saved, self.last_good = str(self.step), prefix
        if wait:
            self.flush()
        return prefix

    def flush(self) -> None:
        """Collective: wait until the checkpoint being written is committed (re-raising its error)."""
        if self.rank == 0:
            self.writer.wait()
        dist.barrier(self.world)

    # ----------------------------------------------------------------- loop
    def run(self) -> dict:
        cfg = self.cfg
        if self.step >= self.total_steps:  # e.g. --init_from_ckpt auto after the run already finished
            if self.progress:
                print(f"[paddle-lm] {self.last_good} is at step {self.step} of {self.total_steps}: nothing to train "
                      f"(raise --max_steps or --epochs to continue)", flush=True)
            return self.resumed_metrics
        log = None
        if self.rank == 0:
            self.source.prepare_save_dir(cfg.save_dir)
            log = MetricsLog(cfg.save_dir, self.step, visualdl=cfg.visualdl)
        dist.barrier(self.world)
        self.net.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step", disable=not self.progress,
                   dynamic_ncols=True)
        window = np.zeros(len(STAT_KEYS))
        t0, last, steps_in_window = time.perf_counter(), None, 0
        params = self.model.parameters()
        with StopFlag() as stop:
            try:
                while self.step < self.total_steps:
                    step_stats = 0
                    for k in range(self.accum):
                        micro = self.step * self.accum + k
                        if micro % self.source.steps_per_epoch == 0:
                            self.state = None  # a new epoch starts every row afresh
                        step_stats = step_stats + self._micro_step(micro, k < self.accum - 1)  # [4]
                    rows_grad = [self.rows.reduce(self.world)] if self.rows is not None else None
                    loss_scale = self.scaler.scale if self.scaler is not None else 1.0
                    norm = clip_grad_norm(params, cfg.max_grad_norm, rows_grad, loss_scale)
                    host = paddle.concat([step_stats, norm.reshape([1])]).numpy().astype(np.float64)  # the sync
                    stats, grad_norm = host[:-1], float(host[-1])
                    # The step boundary: every rank learns whether any rank got a signal or a non-finite value.
                    signalled, bad_loss, bad_norm = dist.all_reduce_sum(
                        [float(stop.signum > 0), float(not np.isfinite(stats).all()),
                         float(not math.isfinite(grad_norm))], self.world)
                    apply = self.scaler.update(not bad_norm) if self.scaler is not None else True
                    if bad_loss or (bad_norm and self.scaler is None) or loss_scale < MIN_SCALE:
                        self._diverged(stats, grad_norm)
                    if self.rank == 0:
                        self.writer.check()  # a background save that failed (a full disk) stops the run here
                    lr_used = float(self.sched.get_lr())
                    if apply:  # (an fp16 step whose gradients overflowed is skipped)
                        # The first step creates the accumulators, named from a process-wide counter: the keys
                        # of the saved state. A fresh counter gives them a fresh process's names in any process.
                        with paddle.utils.unique_name.guard():
                            self.opt.step()
                        if self.rows is not None:
                            self.rows.step(lr_used)
                    self.opt.clear_grad()
                    self.sched.step()
                    self.step += 1
                    window += stats
                    steps_in_window += 1
                    bar.update(1)
                    if self.step % cfg.logging_steps == 0 or self.step == self.total_steps:
                        sums = dist.all_reduce_sum(list(window), self.world)
                        elapsed = time.perf_counter() - t0
                        last = self._record(sums, lr_used, grad_norm,
                                            self.tokens_per_step * steps_in_window / elapsed)
                        if log is not None:
                            log.write(last)
                            bar.set_postfix(loss=f"{last['loss']:.3f}", ppl=f"{last['ppl']:.1f}")
                            self.learning.see(last["loss"], self.step)
                        window[:] = 0
                        steps_in_window, t0 = 0, time.perf_counter()
                    if self.step % cfg.save_steps == 0 and self.step < self.total_steps:
                        self.save(str(self.step), last)
                    if signalled and self.step < self.total_steps:
                        prefix = self.save(str(self.step), last) if self.saved != str(self.step) else self.last_good
                        self.flush()
                        raise Interrupted(f"interrupted at step {self.step}; saved {prefix}; resume with "
                                          f"--init_from_ckpt={prefix}", stop.signum or signal.SIGTERM)
            finally:
                bar.close()
                if log is not None:
                    log.close()
            self.save("final", last, wait=True)  # a signal now is only noted: the run ends as it would have
        guard_startup(f"interrupted after training; {os.path.join(self.cfg.save_dir, 'final')} is saved")
        return last or {}

    def _diverged(self, stats: np.ndarray, grad_norm: float) -> None:
        """Stop before the non-finite update is applied: nothing is saved, nothing pruned."""
        self.opt.clear_grad()
        if self.rank == 0:
            self.writer.wait()  # the last good checkpoint named below is committed
        loss = window_loss(stats)
        good = (f"the last good checkpoint is {self.last_good} (resume with --init_from_ckpt={self.last_good} "
                f"and a lower --lr or --max_grad_norm)") if self.last_good else "no checkpoint was saved yet"
        raise Diverged(f"non-finite training loss or gradient norm at step {self.step + 1} (loss {loss:.4g}, "
                       f"gradient norm {grad_norm:.4g} on rank {self.rank}); the update was not applied and "
                       f"nothing was saved; {good}")

    def _batch(self, micro: int) -> dict[str, np.ndarray]:
        """Micro-batch `micro` as numpy arrays: the data and the softmax's negatives (pure in `micro`)."""
        batch = self.source.batch(micro)
        if self.sampler is not None:
            batch["softmax_samples"] = self.sampler.draw(np.random.default_rng([self.cfg.seed, self.rank, micro]))
            if self.rows is not None:
                batch["softmax_rows"] = touched_rows(batch, batch["softmax_samples"])
        return batch

    def _micro_step(self, micro: int, defer_sync: bool) -> paddle.Tensor:
        """Forward and backward of micro-batch `micro`, gradients added to the parameters' (summed over
        ranks unless `defer_sync`); returns its loss statistics, left on the device (`[4]`, STAT_KEYS)."""
        paddle.seed(self.cfg.seed + 1000003 * self.rank + micro)
        batch = self.prefetch.get(micro)
        sync = self.net.no_sync() if defer_sync and self.world > 1 else contextlib.nullcontext()
        with sync:
            inputs = to_tensors(batch)
            if self.rows is not None:
                inputs["softmax_rows"] = self.rows.slice(inputs["softmax_rows"])
            with paddle.amp.auto_cast(enable=self.amp_dtype is not None, dtype=self.amp_dtype or "float16",
                                      level="O1"):
                outputs, loss, new_state = self.net(inputs, self.state)
            if self.amp_dtype:  # autocast may leave the loss and the carried state in low precision
                loss, new_state = loss.astype("float32"), [t.astype("float32") for t in new_state]
            loss = loss / self.accum if self.accum > 1 else loss
            (loss * self.scaler.scale if self.scaler is not None else loss).backward()
        self.state = [t.detach() for t in new_state]
        zero = paddle.zeros([], dtype="float32")
        return paddle.stack([outputs[k].reshape([]).astype("float32") if k in outputs else zero
                             for k in STAT_KEYS])  # [4]

    def _record(self, sums: list[float], lr: float, grad_norm: float, tokens_per_s: float) -> dict:
        loss = window_loss(sums)
        out = {"step": self.step, "loss": round(loss, 6), **perplexity(loss), "lr": lr,
               "grad_norm": round(grad_norm, 6), "tokens_per_s": round(tokens_per_s, 1)}
        if self.scaler is not None:  # fp16: the loss scale now and the overflowing steps skipped so far
            out.update(loss_scale=self.scaler.scale, skipped_steps=self.scaler.skipped)
        return out


def train(data: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True) -> dict:
    """Train (or resume) a model and return the last logged metrics."""
    with startup_guard("interrupted before step 1; nothing was saved"):  # a clean line until the loop starts
        trainer = Trainer(data, model_cfg, cfg, progress)
        try:
            last = _announce_and_run(trainer, progress)
        except BaseException:
            trainer.close(failing=True)
            raise
        trainer.close()
    return last


def _announce_and_run(trainer: Trainer, progress: bool) -> dict:
    if trainer.rank == 0 and progress:
        c = trainer.source.corpus
        n_params = sum(int(np.prod(p.shape)) for p in trainer.model.parameters())
        print(f"[paddle-lm] {trainer.model_cfg.model}: {n_params:,} parameters; vocab {trainer.model_cfg.vocab_size:,}; "
              f"corpus {c.n_sentences:,} sentences / {c.n_tokens:,} tokens; {trainer.world} rank(s) on "
              f"{trainer.device}; "
              f"{trainer.steps_per_epoch:,} steps per epoch; training to step {trainer.total_steps:,}"
              f"{trainer.describe_precision()}", flush=True)
        if trainer.amp_note:
            print(f"[paddle-lm] note: {trainer.amp_note}", flush=True)
        if trainer.pretrained and trainer.model_cfg.model == "elmo":
            print(f"[paddle-lm] starting from {trainer.pretrained}: its encoder, and a fresh softmax over this run's "
                  f"vocabulary", flush=True)
    return trainer.run()
