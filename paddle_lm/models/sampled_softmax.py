"""Sampled softmax (bilm-tf's training objective for large vocabularies), as a small explicit-RNG unit.

Training scores each target against K negative classes drawn once per batch from a log-uniform (Zipf)
distribution over the frequency-ordered vocabulary, ``p(k) = log((k+2)/(k+1)) / log(V+1)``, with the
usual correction: every logit has ``log(expected count) = log(K p(k))`` subtracted, and a sampled class that
equals a row's own target is removed from that row. Evaluation always uses the full softmax.
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F

#: float32 [targets, V] arrays a full-softmax step holds at its peak (the logits and their gradient). Measured on
#: CPU, elmo-tiny, batch 32 x unroll 20 x 2 directions: peak RSS grew 1.93 GiB at V = 200k and 3.84 GiB at 400k,
#: against 1.91 and 3.81 GiB from this count.
FULL_SOFTMAX_COPIES = 2
FULL_SOFTMAX_NOTE_BYTES = 2**30  # above this, training with the full softmax says what it costs


def full_softmax_note(targets: int, vocab_size: int) -> str:
    """One line estimating the memory of a full-softmax micro-batch over `targets` scored positions, or "" when
    it is below FULL_SOFTMAX_NOTE_BYTES."""
    need = FULL_SOFTMAX_COPIES * 4 * targets * vocab_size
    if need < FULL_SOFTMAX_NOTE_BYTES:
        return ""
    return (f"the full softmax over {vocab_size:,} words needs about {need / 2**30:.1f} GiB per micro-batch "
            f"({targets:,} targets x {vocab_size:,} logits x {FULL_SOFTMAX_COPIES} float32 copies); pass "
            f"--n_negative_samples 8192 (bilm-tf's sampled softmax) or a smaller --batch_size / --unroll_steps")


class LogUniformSampler:
    """Draws K class ids (with replacement) from the log-uniform distribution over ``vocab_size`` ids."""

    def __init__(self, vocab_size: int, num_samples: int):
        if not 0 < num_samples:
            raise ValueError("num_samples must be positive")
        self.vocab_size, self.num_samples = vocab_size, num_samples

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """`[K]` int64 ids; the same `rng` state gives the same ids."""
        u = rng.random(self.num_samples)
        ids = np.floor(np.exp(u * math.log(self.vocab_size + 1))).astype(np.int64) - 1  # inverse CDF
        return np.clip(ids, 0, self.vocab_size - 1)


def log_expected_count(ids: paddle.Tensor, vocab_size: int, num_samples: int) -> paddle.Tensor:
    """``log(K * p(id))`` under the log-uniform sampler, elementwise."""
    ids = ids.astype("float32")
    p = paddle.log((ids + 2.0) / (ids + 1.0)) / math.log(vocab_size + 1)
    return paddle.log(p * num_samples)


def sampled_token_losses(hidden, weight, bias, targets, mask, samples, vocab_size: int, class_axis: int,
                         rows=None):
    """Per-target sampled-softmax cross-entropy times the mask.

    ``hidden [N, P]``; ``weight`` holds the output classes along ``class_axis`` (``[P, V]`` for an
    ``nn.Linear`` weight, axis 1; ``[V, P]`` for a tied embedding, axis 0); ``bias [V]``; ``targets [N]``
    int64; ``mask [N]`` float; ``samples [K]`` int64. With ``rows [R]`` (sorted class ids holding every scored
    target, every sample and id 0), ``weight`` and ``bias`` are those rows' slices (``[P, R]`` / ``[R, P]``,
    ``[R]``; training/rowwise.py) and the ids are still class ids. Returns ``[N]``.
    """
    k = samples.shape[0]
    safe_targets = paddle.where(mask > 0, targets, paddle.zeros_like(targets))  # [N]
    t_at, s_at = safe_targets, samples
    if rows is not None:  # positions of the class ids in the slice
        t_at, s_at = paddle.searchsorted(rows, safe_targets), paddle.searchsorted(rows, samples)  # [N], [K]
    w_true = paddle.gather(weight, t_at, axis=class_axis)  # [P, N] or [N, P]
    w_samp = paddle.gather(weight, s_at, axis=class_axis)  # [P, K] or [K, P]
    if class_axis == 1:
        w_true, w_samp = w_true.T, w_samp.T  # [N, P], [K, P]
    true_logit = (hidden * w_true).sum(axis=-1) + paddle.gather(bias, t_at)  # [N]
    true_logit = true_logit - log_expected_count(safe_targets, vocab_size, k)  # [N]
    samp_bias = paddle.gather(bias, s_at) - log_expected_count(samples, vocab_size, k)  # [K], corrected
    samp_logit = biased_logits(hidden, w_samp, samp_bias, class_axis=0)  # [N, K]
    hits = safe_targets.unsqueeze(1) == samples.unsqueeze(0)  # [N, K]
    samp_logit = paddle.where(hits, paddle.full_like(samp_logit, -1e4), samp_logit)  # [N, K]
    logits = paddle.concat([true_logit.unsqueeze(1), samp_logit], axis=1)  # [N, 1+K]
    ce = F.cross_entropy(logits, paddle.zeros([logits.shape[0], 1], dtype="int64"), reduction="none")  # [N, 1]
    return ce.reshape([-1]) * mask.astype(ce.dtype)  # [N]


def softmax_token_losses(hidden, weight, bias, targets, mask, class_axis: int, samples=None, rows=None):
    """Per-target cross-entropy (times the mask) under the full softmax, or the sampled one if `samples`.

    Shapes as in `sampled_token_losses`; `rows` is None or the ``(ids, weight_rows, bias_rows)`` a row-wise
    trainer put in the batch (``softmax_rows``), used in place of `weight` and `bias`. Returns ``[N]``.
    """
    from paddle_lm.models.layers import masked_token_losses

    vocab_size = weight.shape[class_axis]
    if samples is not None:
        ids = None
        if rows is not None:
            ids, weight, bias = rows
        return sampled_token_losses(hidden, weight, bias, targets, mask, samples, vocab_size, class_axis, ids)
    return masked_token_losses(biased_logits(hidden, weight, bias, class_axis), targets, mask)


def biased_logits(hidden, weight, bias, class_axis: int):
    """``hidden @ W + bias`` as one matmul: the bias is a row of the weight and a ones column of the input. On
    CPU this is ~10-15% faster for the whole softmax layer (fwd + bwd) than a matmul plus a broadcast add, whose
    bias gradient is a separate reduction over ``[N, V]``; the price is a copy of the weight. Returns ``[N, V]``."""
    ones = paddle.ones([hidden.shape[0], 1], dtype=hidden.dtype)
    x = paddle.concat([hidden, ones], axis=1)  # [N, P + 1]
    w = paddle.concat([weight, bias.unsqueeze(class_axis ^ 1)], axis=class_axis ^ 1)  # [P + 1, V] or [V, P + 1]
    return paddle.matmul(x, w, transpose_y=class_axis == 0)  # [N, V]
