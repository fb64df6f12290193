"""Optimizer, global-norm clipping (with the norm the loop checks for divergence) and the warmup/decay
learning-rate schedule."""

from __future__ import annotations

import math

import paddle

from paddle_lm.config import TrainConfig
from paddle_lm.training.amp import LossScaler
from paddle_lm.training.rowwise import RowwiseSoftmax


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


ADAGRAD_INITIAL_ACCUMULATOR = 1.0  # bilm-tf's
ADAGRAD_EPSILON = 1e-6  # Paddle's default


def build_optimizer(cfg: TrainConfig, model: paddle.nn.Layer, total_steps: int, rowwise: bool = False):
    """(optimizer, scheduler, row-wise softmax or None) for `model`; the scheduler is stepped once per optimizer
    step. With `rowwise` (Adagrad only; config.rowwise_softmax decides) the model's softmax learns through a
    `RowwiseSoftmax` and the Paddle optimizer holds the other parameters."""
    sched = paddle.optimizer.lr.LambdaDecay(
        cfg.lr, lambda s: lr_factor(s, cfg.warmup_steps, total_steps, cfg.lr_decay))
    rows = None
    if rowwise:
        rows = RowwiseSoftmax(*model.softmax_params(), initial_accumulator=ADAGRAD_INITIAL_ACCUMULATOR,
                              epsilon=ADAGRAD_EPSILON)
    params = [p for p in model.parameters() if not p.stop_gradient]  # without the row-wise softmax's
    # no grad_clip: the loop calls `clip_grad_norm` (it needs the norm itself)
    if cfg.optimizer == "adagrad":
        opt = paddle.optimizer.Adagrad(sched, parameters=params, initial_accumulator_value=ADAGRAD_INITIAL_ACCUMULATOR,
                                       epsilon=ADAGRAD_EPSILON)
    else:
        decay_names = {p.name for n, p in model.named_parameters() if not _no_decay(n)}
        opt = paddle.optimizer.AdamW(sched, parameters=params, weight_decay=cfg.weight_decay,
                                     apply_decay_param_fun=lambda name: name in decay_names)
    return opt, sched, rows


SCALER_KEY = "loss_scaler"  # the fp16 loss scaler's state, in the .pdopt beside the optimizer's


def optimizer_state(opt, rows: RowwiseSoftmax | None, scaler: LossScaler | None) -> dict:
    """What a checkpoint's .pdopt holds: the Paddle optimizer's state (with the LR schedule), the row-wise
    softmax's accumulators under Paddle's names, and the fp16 loss scaler's state."""
    state = {**opt.state_dict(), **(rows.state_dict() if rows is not None else {})}
    if scaler is not None:
        state[SCALER_KEY] = scaler.state_dict()
    return state


def load_optimizer_state(opt, rows: RowwiseSoftmax | None, scaler: LossScaler | None, state: dict) -> None:
    """The inverse of `optimizer_state`, for a state saved in either --softmax_update mode, with or without a
    scaler. Paddle's optimizer asserts, when its first step creates an accumulator, that a non-empty loaded
    state holds it: so it gets neither the row-wise softmax's accumulators nor, from a checkpoint taken before
    any update was applied (every fp16 step skipped), anything but the LR schedule."""
    state = dict(state)
    scaler_state = state.pop(SCALER_KEY, None)
    if scaler is not None and scaler_state:
        scaler.set_state_dict(scaler_state)
    if rows is not None:
        rows.set_state_dict(state)
        for key in rows.state_dict():
            state.pop(key, None)
    names = tuple(f"{p.name}_" for p in opt._parameter_list)
    if not any(key.startswith(names) for key in state):
        state = {k: v for k, v in state.items() if k == "LR_Scheduler"}
    opt.set_state_dict(state)


@paddle.no_grad()
def clip_grad_norm(params, max_norm: float, extra: list | None = None, loss_scale: float = 1.0) -> paddle.Tensor:
    """Global L2 norm of the parameters' gradients and of the `extra` gradient tensors (the row-wise softmax's;
    a 0-d tensor, left on the device: the loop reads it with the step's loss statistics in one host sync).

    The gradients are those of the loss times `loss_scale` (fp16 loss scaling; 1 otherwise): the norm returned is
    the true one, and the gradients are divided by the scale and, with `max_norm` > 0, clipped by
    ``max_norm / max(norm, max_norm)`` (ClipGradByGlobalNorm's math), in place and in one pass."""
    grads = [p.grad for p in params if p.grad is not None] + list(extra or [])
    if not grads:
        return paddle.zeros([], dtype="float32")
    norm = paddle.sqrt(paddle.add_n([paddle.sum(paddle.square(g.astype("float32"))) for g in grads]))  # []
    if loss_scale != 1.0:
        norm = norm / loss_scale
    if max_norm > 0 or loss_scale != 1.0:
        factor = paddle.full([], 1.0 / loss_scale, dtype="float32")  # []
        if max_norm > 0:
            factor = factor * max_norm / paddle.maximum(norm, paddle.full([], max_norm, dtype="float32"))  # []
        for g in grads:
            g.scale_(factor.astype(g.dtype))  # scale_: 10x faster than multiply_ by a 0-d tensor on CPU
    return norm
