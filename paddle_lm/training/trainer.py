"""The one training loop: data stream -> model -> loss -> clipped optimizer step, with logging,
atomic checkpoints and exact resume, on one rank or under `paddle.distributed.launch`."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time

import numpy as np
import paddle
from tqdm import tqdm

from paddle_lm.config import DataConfig, ModelConfig, TrainConfig, validate_model, validate_train
from paddle_lm.data.blocks import BlockBatches, CausalBlocks
from paddle_lm.data.shards import EncodedCorpus, file_lock
from paddle_lm.data.stream import BPTTStream
from paddle_lm.data.subword import CONFIG_FILE, VOCAB_FILES, fast_tokenizer, tokenizer_identity, train_bpe
from paddle_lm.data.subword_shards import SubwordCorpus
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


def gpt2_tokenizer(data: DataConfig, cfg: TrainConfig, side: dict | None, resume: str, progress: bool) -> str:
    """The GPT-2 tokenizer folder: --tokenizer_dir, else the resumed checkpoint's copy, else
    ``{save_dir}/tokenizer`` (a BPE trained on --train_data_path the first time, under a file lock)."""
    if data.tokenizer_dir:
        tokenizer_identity(data.tokenizer_dir)  # a UserError if it is not a GPT-2 tokenizer folder
        return data.tokenizer_dir
    if side is not None and "tokenizer_dir" in side["data"]:
        return os.path.join(os.path.dirname(resume), side["data"]["tokenizer_dir"])
    out = os.path.join(cfg.save_dir, "tokenizer")
    os.makedirs(cfg.save_dir, exist_ok=True)
    with file_lock(os.path.join(cfg.save_dir, ".tokenizer.lock")):
        if not os.path.isfile(os.path.join(out, "vocab.json")):
            tmp = out + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            train_bpe(data.train_data_path, tmp, data.subword_vocab_size, progress=progress)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
    return out


def _restore(prefix: str, model_cfg: ModelConfig, vocab: Vocab | None,
             tokenizer: tuple[str, str] | None = None) -> tuple[dict, ModelConfig]:
    side = ckpt.read_sidecar(prefix)
    saved = ModelConfig(**side["model_config"])
    if saved.model != model_cfg.model:
        raise UserError(f"--init_from_ckpt {prefix} holds a {saved.model!r} model but --model is {model_cfg.model!r}")
    if tokenizer is not None:
        tok_dir, ident = tokenizer
        if side["data"].get("tokenizer_identity") != ident:
            raise UserError(f"--tokenizer_dir {tok_dir!r} does not match checkpoint {prefix} (identity {ident}; the "
                            f"checkpoint's is {side['data'].get('tokenizer_identity')}); pass the tokenizer the run "
                            f"started with, or leave --tokenizer_dir empty to use the checkpoint's copy")
    elif side["data"].get("vocab_identity") != vocab.identity:
        raise UserError(f"--vocab_file does not match checkpoint {prefix} (its vocabulary has "
                        f"{side['data']['vocab_size']} tokens, identity {side['data']['vocab_identity']}; this one "
                        f"{len(vocab)} tokens, identity {vocab.identity}); pass the vocabulary the run started with")
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
        self.blocks = model_cfg.model == "gpt2"  # fixed blocks of subword ids instead of BPTT rows of words
        self.vocab, self.tokenizer_dir, self.tokenizer_identity = None, "", ""
        side = None
        if self.blocks:
            side = ckpt.read_sidecar(resume) if resume else None
            if cfg.n_negative_samples:
                raise UserError("--n_negative_samples is not supported with --model gpt2 (it trains with the full "
                                "softmax); use 0")
            self.tokenizer_dir = gpt2_tokenizer(data, cfg, side, resume, self.progress)
            self.tokenizer_identity = tokenizer_identity(self.tokenizer_dir)
            vocab_size = fast_tokenizer(self.tokenizer_dir, "gpt2").get_vocab_size()
            tokenizer = (self.tokenizer_dir, self.tokenizer_identity)
        else:
            self.vocab = Vocab.load(data.vocab_file)
            vocab_size, tokenizer = len(self.vocab), None
        if resume:
            side, model_cfg = _restore(resume, model_cfg, self.vocab, tokenizer)
        model_cfg = dataclasses.replace(model_cfg, vocab_size=vocab_size)
        validate_model(model_cfg)
        self.model_cfg = model_cfg
        dist.init(self.world)
        if self.blocks:
            if cfg.block_size > model_cfg.max_position_embeddings:
                raise UserError(f"--block_size {cfg.block_size} exceeds --max_position_embeddings "
                                f"{model_cfg.max_position_embeddings}")
            corpus = SubwordCorpus(data.train_data_path, self.tokenizer_dir, what="--train_data_path",
                                   cache_dir=data.cache_dir, progress=self.progress)
            self.stream = BlockBatches(CausalBlocks(corpus, cfg.block_size, self.rank, self.world, cfg.seed),
                                       cfg.batch_size)
            self.tokens_per_step = cfg.batch_size * cfg.block_size * self.world
        else:
            corpus = open_corpus(data.train_data_path, self.vocab, data, model_cfg, "--train_data_path",
                                 self.progress)
            self.stream = BPTTStream(corpus, cfg.batch_size, cfg.unroll_steps, self.rank, self.world)
            self.tokens_per_step = cfg.batch_size * cfg.unroll_steps * self.world
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
        keys = ("batch_size", "block_size", "world_size", "n_tokens", "seed") if self.blocks else (
            "batch_size", "unroll_steps", "world_size", "n_tokens")
        diff = [k for k in keys if ours[k] != theirs.get(k)]
        if diff:
            raise UserError(f"cannot resume {prefix} exactly: " + ", ".join(
                f"{k} was {theirs.get(k)}, now {ours[k]}" for k in diff) + " (use the run's original settings)")
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
                "tokens_seen": self.step * self.tokens_per_step,
                "model_config": dataclasses.asdict(self.model_cfg), "train_config": dataclasses.asdict(self.cfg),
                "data": self._data_sidecar(),
                "geometry": self.geometry(), "rng": {"scheme": RNG_SCHEME, "seed": self.cfg.seed},
                "metrics": last or {},
            }
            ckpt.save_checkpoint(prefix, self.model.state_dict(), self.opt.state_dict(),
                                 {f"s{i}": a for i, a in enumerate(gathered)}, sidecar)
            if name != "final":
                ckpt.prune(self.cfg.save_dir, self.cfg.keep_last)
        dist.barrier(self.world)
        return prefix

    def _data_sidecar(self) -> dict:
        if self.blocks:
            return {"train_data_path": self.data.train_data_path, "tokenizer_dir": "tokenizer",
                    "tokenizer_identity": self.tokenizer_identity, "vocab_size": self.model_cfg.vocab_size}
        return {"train_data_path": self.data.train_data_path, "vocab_file": "vocab.txt",
                "vocab_identity": self.vocab.identity, "vocab_size": len(self.vocab),
                "max_characters_per_token": self.data.max_characters_per_token}

    def _prepare_save_dir(self) -> None:
        os.makedirs(self.cfg.save_dir, exist_ok=True)
        if not self.blocks:
            self.vocab.save(os.path.join(self.cfg.save_dir, "vocab.txt"))
            return
        out = os.path.join(self.cfg.save_dir, "tokenizer")  # the checkpoints' own copy of the tokenizer
        if os.path.abspath(out) != os.path.abspath(self.tokenizer_dir):
            os.makedirs(out, exist_ok=True)
            for name in (*VOCAB_FILES["gpt2"], CONFIG_FILE):
                src = os.path.join(self.tokenizer_dir, name)
                if os.path.isfile(src):
                    shutil.copyfile(src, os.path.join(out, name))

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
        tokens_per_step = self.tokens_per_step
        steps_in_window = 0
        try:
            while self.step < self.total_steps:
                s = self.step % spe
                if s == 0:
                    self.state = None  # a new epoch starts every row afresh
                paddle.seed(cfg.seed + 1000003 * self.rank + self.step)
                batch = self.stream.batch(self.step if self.blocks else s)  # blocks: the global step
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
        print(f"[paddle-lm] {trainer.model_cfg.model}: {n_params:,} parameters; vocab {trainer.model_cfg.vocab_size:,}; "
              f"corpus {c.n_sentences:,} sentences / {c.n_tokens:,} tokens; {trainer.world} rank(s); "
              f"{trainer.stream.steps_per_epoch:,} steps per epoch; training to step {trainer.total_steps:,}",
              flush=True)
    return trainer.run()
