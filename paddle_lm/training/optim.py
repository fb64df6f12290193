"""Optimizer, global-norm clipping and the warmup/decay learning-rate schedule."""

from __future__ import annotations

import math

import paddle

from paddle_lm.config import TrainConfig


def lr_factor(step: int, warmup: int, total: int, decay: str) -> float:
    """Multiplier of the peak LR at optimizer step `step` (0-based): linear warmup, then none/linear/cosine."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if decay == "none" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if decay == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _no_decay(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(("bias", ".b_0")) or "norm" in lowered


def build_optimizer(cfg: TrainConfig, model: paddle.nn.Layer, total_steps: int):
    """(optimizer, scheduler) for `model`; the scheduler is stepped once per optimizer step."""
    sched = paddle.optimizer.lr.LambdaDecay(
        cfg.lr, lambda s: lr_factor(s, cfg.warmup_steps, total_steps, cfg.lr_decay))
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
    params = model.parameters()
    if cfg.optimizer == "adagrad":
        # bilm-tf: Adagrad with initial accumulator 1.0.
        opt = paddle.optimizer.Adagrad(sched, parameters=params, grad_clip=clip, initial_accumulator_value=1.0)
    else:
        decay_names = {p.name for n, p in model.named_parameters() if not _no_decay(n)}
        opt = paddle.optimizer.AdamW(sched, parameters=params, grad_clip=clip, weight_decay=cfg.weight_decay,
                                     apply_decay_param_fun=lambda name: name in decay_names)
    return opt, sched
