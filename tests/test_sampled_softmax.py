"""Sampled softmax: the sampler's distribution, the loss's corrections, and that training with it learns."""

from __future__ import annotations

import math

import numpy as np
import paddle

from paddle_lm.models.sampled_softmax import (
    LogUniformSampler,
    log_expected_count,
    sampled_token_losses,
    softmax_token_losses,
)


def test_sampler_is_deterministic_and_log_uniform():
    V, K = 1000, 200_000
    s = LogUniformSampler(V, K)
    a = s.draw(np.random.default_rng(7))
    assert (a == s.draw(np.random.default_rng(7))).all()
    probs = np.log((np.arange(V) + 2) / (np.arange(V) + 1)) / math.log(V + 1)  # [V], sums to 1
    counts = np.bincount(a, minlength=V)  # draw() clips into [0, V), so only the counts can tell
    # the whole distribution: Pearson's chi-square has V - 1 degrees of freedom (mean V - 1, sd sqrt(2(V - 1)));
    # an off-by-one inverse CDF scores ~29000, a uniform sampler ~10^6
    chi2 = float(((counts - K * probs) ** 2 / (K * probs)).sum())
    assert chi2 < V - 1 + 6 * math.sqrt(2 * (V - 1)), chi2
    for k in (0, 1, 10, 100, V - 1):  # the head, and both ends, where clipped ids would pile up
        assert abs(counts[k] - K * probs[k]) < 4 * math.sqrt(K * probs[k]) + 1, (k, counts[k], K * probs[k])
    expected = log_expected_count(paddle.to_tensor([0, 10]), V, K).numpy()
    assert np.allclose(expected, [math.log(K * math.log(2) / math.log(V + 1)),
                                  math.log(K * math.log(12 / 11) / math.log(V + 1))], rtol=1e-5)


def test_sampled_loss_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    N, P, V = 4, 3, 10
    hidden, weight, bias = rng.normal(size=(N, P)), rng.normal(size=(P, V)), rng.normal(size=V)
    targets, samples = np.array([1, 2, 3, 9]), np.array([2, 5, 5, 0])
    mask = np.array([1.0, 1.0, 0.0, 1.0])
    got = sampled_token_losses(*(paddle.to_tensor(x, dtype="float32") for x in (hidden, weight, bias)),
                               paddle.to_tensor(targets), paddle.to_tensor(mask, dtype="float32"),
                               paddle.to_tensor(samples), V, class_axis=1).numpy()
    K = len(samples)

    def logq(k):
        return math.log(K * math.log((k + 2) / (k + 1)) / math.log(V + 1))

    for n in range(N):
        true = hidden[n] @ weight[:, targets[n]] + bias[targets[n]] - logq(targets[n])
        neg = [hidden[n] @ weight[:, k] + bias[k] - logq(k) for k in samples if k != targets[n]]  # hits removed
        want = (np.logaddexp.reduce([true, *neg]) - true) * mask[n]
        assert abs(got[n] - want) < 1e-4, (n, got[n], want)


def test_training_with_sampled_softmax_lowers_the_full_loss():
    paddle.seed(0)
    rng = np.random.default_rng(0)
    N, P, V = 256, 8, 200
    x = paddle.to_tensor(rng.normal(size=(N, P)), dtype="float32")
    true_w = rng.normal(size=(P, V)) * 2
    targets = paddle.to_tensor((x.numpy() @ true_w).argmax(1))
    weight = paddle.create_parameter([P, V], "float32")
    bias = paddle.create_parameter([V], "float32", is_bias=True)
    opt = paddle.optimizer.Adam(0.05, parameters=[weight, bias])
    mask = paddle.ones([N])
    sampler = LogUniformSampler(V, 32)

    def full_loss():
        return float(softmax_token_losses(x, weight, bias, targets, mask, class_axis=1).mean())

    before = full_loss()
    for step in range(60):
        samples = paddle.to_tensor(sampler.draw(np.random.default_rng(step)))
        loss = softmax_token_losses(x, weight, bias, targets, mask, class_axis=1, samples=samples).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
    assert full_loss() < 0.6 * before


def test_full_softmax_note_only_when_it_is_large():
    from paddle_lm.models.sampled_softmax import full_softmax_note

    assert full_softmax_note(32 * 20 * 2, 16_285) == ""  # the sample: ~0.16 GiB
    note = full_softmax_note(32 * 20 * 2, 793_471)  # the full 1B-word vocabulary
    assert "7.6 GiB" in note and "--n_negative_samples 8192" in note
