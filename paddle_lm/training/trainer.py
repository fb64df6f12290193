"""The one training loop: data stream -> model -> loss -> clipped optimizer step, with logging,
atomic checkpoints and exact resume, on one rank or under `paddle.distributed.launch`."""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import paddle
from tqdm import tqdm

from paddle_lm.config import DataConfig, ModelConfig, TrainConfig, validate_model, validate_train
from paddle_lm.data.shards import EncodedCorpus
from paddle_lm.data.stream import BPTTStream
from paddle_lm.data.vocab import Vocab
from paddle_lm.errors import UserError
from paddle_lm.models import build_model
from paddle_lm.models.sampled_softmax import LogUniformSampler
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.training import distributed as dist
from paddle_lm.training.metrics import MetricsLog
from paddle_lm.training.optim import build_optimizer

RNG_SCHEME = ("dropout: paddle.seed(seed + 1000003 * rank + step) before every step; "
              "softmax samples: numpy default_rng([seed, rank, step])")
STAT_KEYS = ("fw_loss_sum", "fw_count", "bw_loss_sum", "bw_count")


def set_device(device: str) -> None:
    """``paddle.set_device(device)`` with one-line errors for an unknown device or a CPU-only build."""
    if device.startswith("gpu") and not paddle.is_compiled_with_cuda():
        raise UserError(f"device {device!r}: this Paddle build has no CUDA; install paddlepaddle-gpu (see README) "
                        f"or use cpu")
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"device {device!r} is not usable here ({e}); use 'cpu' or 'gpu'") from None


def to_tensors(batch: dict[str, np.ndarray]) -> dict[str, paddle.Tensor]:
    return {k: paddle.to_tensor(v) for k, v in batch.items()}


def open_corpus(pattern: str, vocab: Vocab, data: DataConfig, model_cfg: ModelConfig, what: str,
                progress: bool) -> EncodedCorpus:
    chars = data.max_characters_per_token if model_cfg.model == "elmo" else None
    return EncodedCorpus(pattern, vocab, what=what, cache_dir=data.cache_dir, max_chars=chars, progress=progress)


def _check_save_dir(cfg: TrainConfig) -> None:
    existing = ckpt.list_checkpoints(cfg.save_dir)
    if existing and not cfg.init_from_ckpt and not cfg.overwrite:
        raise UserError(f"--save_dir {cfg.save_dir!r} already holds checkpoints ({', '.join(existing[-3:])}); "
                        f"resume with --init_from_ckpt={os.path.join(cfg.save_dir, existing[-1])}, "
                        f"pick another --save_dir, or pass --overwrite")


def _restore(prefix: str, model_cfg: ModelConfig, vocab: Vocab) -> tuple[dict, ModelConfig]:
    side = ckpt.read_sidecar(prefix)
    if side["data"]["vocab_identity"] != vocab.identity:
        raise UserError(f"--vocab_file does not match checkpoint {prefix} (its vocabulary has "
                        f"{side['data']['vocab_size']} tokens, identity {side['data']['vocab_identity']}; this one "
                        f"{len(vocab)} tokens, identity {vocab.identity}); pass the vocabulary the run started with")
    saved = ModelConfig(**side["model_config"])
    if saved.model != model_cfg.model:
        raise UserError(f"--init_from_ckpt {prefix} holds a {saved.model!r} model but --model is {model_cfg.model!r}")
    return side, saved


class Trainer:
    """Holds what one run needs; `run()` trains to `total_steps` and returns the last metrics."""

    def __init__(self, data: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True):
        validate_train(cfg)
        self.cfg, self.data = cfg, data
        self.rank, self.world = dist.rank_and_world()
        self.progress = progress and self.rank == 0
        set_device(cfg.device)
        resume = ckpt.resolve_prefix(cfg.init_from_ckpt) if cfg.init_from_ckpt else ""
        _check_save_dir(cfg)  # on every rank, so all of them stop with the same message
        self.vocab = Vocab.load(data.vocab_file)
        side = None
        if resume:
            side, model_cfg = _restore(resume, model_cfg, self.vocab)
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(self.vocab))
        validate_model(model_cfg)
        self.model_cfg = model_cfg
        dist.init(self.world)
        corpus = open_corpus(data.train_data_path, self.vocab, data, model_cfg, "--train_data_path", self.progress)
        self.stream = BPTTStream(corpus, cfg.batch_size, cfg.unroll_steps, self.rank, self.world)
        spe = self.stream.steps_per_epoch
        self.total_steps = cfg.max_steps or cfg.epochs * spe
        paddle.seed(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(model_cfg)
        self.sampler = None
        if cfg.n_negative_samples:
            if cfg.n_negative_samples >= len(self.vocab):
                raise UserError(f"--n_negative_samples {cfg.n_negative_samples} must be smaller than the "
                                f"vocabulary ({len(self.vocab)} tokens); use 0 for the full softmax")
            self.sampler = LogUniformSampler(len(self.vocab), cfg.n_negative_samples)
        self.opt, self.sched = build_optimizer(cfg, self.model, self.total_steps)
        self.step, self.state = 0, None
        if side is not None:
            self._load(resume, side)
        self.net = paddle.DataParallel(self.model) if self.world > 1 else self.model

    # ----------------------------------------------------------------- checkpoints
    def geometry(self) -> dict:
        return {**self.stream.geometry, "world_size": self.world}

    def _load(self, prefix: str, side: dict) -> None:
        ours, theirs = self.geometry(), side["geometry"]
        diff = [k for k in ("batch_size", "unroll_steps", "world_size", "n_tokens") if ours[k] != theirs[k]]
        if diff:
            raise UserError(f"cannot resume {prefix} exactly: " + ", ".join(
                f"{k} was {theirs[k]}, now {ours[k]}" for k in diff) + " (use the run's original settings)")
        self.model.set_state_dict(ckpt.safe_load(prefix + ".pdparams"))
        self.opt.set_state_dict(ckpt.safe_load(prefix + ".pdopt"))
        self.step = int(side["step"])
        carried = ckpt.load_carried(prefix)
        B = self.cfg.batch_size
        if carried and self.step % self.stream.steps_per_epoch:
            rows = slice(self.rank * B, (self.rank + 1) * B)
            self.state = [paddle.to_tensor(carried[f"s{i}"][rows]) for i in range(len(carried))]

    def save(self, name: str, last: dict | None) -> str:
        """Collective: every rank calls it; rank 0 writes ``{save_dir}/{name}.*``."""
        state = self.state or []
        gathered = dist.gather_rows([t.numpy() for t in state], self.world)
        prefix = os.path.join(self.cfg.save_dir, name)
        if self.rank == 0:
            spe = self.stream.steps_per_epoch
            sidecar = {
                "step": self.step, "epoch": self.step // spe, "step_in_epoch": self.step % spe,
                "tokens_seen": self.step * self.cfg.batch_size * self.cfg.unroll_steps * self.world,
                "model_config": dataclasses.asdict(self.model_cfg), "train_config": dataclasses.asdict(self.cfg),
                "data": {"train_data_path": self.data.train_data_path, "vocab_file": "vocab.txt",
                         "vocab_identity": self.vocab.identity, "vocab_size": len(self.vocab),
                         "max_characters_per_token": self.data.max_characters_per_token},
                "geometry": self.geometry(), "rng": {"scheme": RNG_SCHEME, "seed": self.cfg.seed},
                "metrics": last or {},
            }
            ckpt.save_checkpoint(prefix, self.model.state_dict(), self.opt.state_dict(),
                                 {f"s{i}": a for i, a in enumerate(gathered)}, sidecar)
            if name != "final":
                ckpt.prune(self.cfg.save_dir, self.cfg.keep_last)
        dist.barrier(self.world)
        return prefix

    def _prepare_save_dir(self) -> None:
        os.makedirs(self.cfg.save_dir, exist_ok=True)
        self.vocab.save(os.path.join(self.cfg.save_dir, "vocab.txt"))

    # ----------------------------------------------------------------- loop
    def run(self) -> dict:
        cfg, spe = self.cfg, self.stream.steps_per_epoch
        log = None
        if self.rank == 0:
            self._prepare_save_dir()
            log = MetricsLog(cfg.save_dir, self.step)
        dist.barrier(self.world)
        self.net.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step", disable=not self.progress,
                   dynamic_ncols=True)
        window = np.zeros(len(STAT_KEYS))
        t0, last = time.perf_counter(), None
        tokens_per_step = cfg.batch_size * cfg.unroll_steps * self.world
        steps_in_window = 0
        try:
            while self.step < self.total_steps:
                s = self.step % spe
                if s == 0:
                    self.state = None  # a new epoch starts every row afresh
                paddle.seed(cfg.seed + 1000003 * self.rank + self.step)
                batch = self.stream.batch(s)
                if self.sampler is not None:
                    batch["softmax_samples"] = self.sampler.draw(np.random.default_rng([cfg.seed, self.rank, self.step]))
                outputs, loss, new_state = self.net(to_tensors(batch), self.state)
                loss.backward()
                self.opt.step()
                self.opt.clear_grad()
                lr_used = float(self.sched.get_lr())
                self.sched.step()
                self.state = [t.detach() for t in new_state]
                window += [float(outputs[k]) if k in outputs else 0.0 for k in STAT_KEYS]
                self.step += 1
                steps_in_window += 1
                bar.update(1)
                if self.step % cfg.logging_steps == 0 or self.step == self.total_steps:
                    sums = dist.all_reduce_sum(list(window), self.world)
                    elapsed = time.perf_counter() - t0
                    last = self._record(sums, lr_used, tokens_per_step * steps_in_window / elapsed)
                    if log is not None:
                        log.write(last)
                        bar.set_postfix(loss=f"{last['loss']:.3f}", ppl=f"{last['ppl']:.1f}")
                    window[:] = 0
                    steps_in_window, t0 = 0, time.perf_counter()
                if self.step % cfg.save_steps == 0 and self.step < self.total_steps:
                    self.save(str(self.step), last)
        except KeyboardInterrupt:
            bar.close()
            if self.world == 1 and self.step > 0:
                prefix = self.save(str(self.step), last)
                raise UserError(f"interrupted at step {self.step}; saved {prefix}; resume with "
                                f"--init_from_ckpt={prefix}") from None
            raise
        finally:
            bar.close()
        self.save("final", last)
        return last or {}

    def _record(self, sums: list[float], lr: float, tokens_per_s: float) -> dict:
        fw_sum, fw_n, bw_sum, bw_n = sums
        losses = [fw_sum / fw_n] + ([bw_sum / bw_n] if bw_n else [])
        loss = sum(losses) / len(losses)
        return {"step": self.step, "loss": round(loss, 6), "ppl": round(math.exp(min(loss, 50.0)), 4),
                "lr": lr, "tokens_per_s": round(tokens_per_s, 1)}


def train(data: DataConfig, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True) -> dict:
    """Train (or resume) a model and return the last logged metrics."""
    trainer = Trainer(data, model_cfg, cfg, progress)
    if trainer.rank == 0 and progress:
        c = trainer.stream.corpus
        n_params = sum(int(np.prod(p.shape)) for p in trainer.model.parameters())
        print(f"[paddle-lm] {trainer.model_cfg.model}: {n_params:,} parameters; vocab {len(trainer.vocab):,}; "
              f"corpus {c.n_sentences:,} sentences / {c.n_tokens:,} tokens; {trainer.world} rank(s); "
              f"{trainer.stream.steps_per_epoch:,} steps per epoch; training to step {trainer.total_steps:,}",
              flush=True)
    return trainer.run()
