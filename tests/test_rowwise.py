"""Row-wise softmax learning (training/rowwise.py): the same optimizer as the dense Adagrad, on one rank and two,
with exact resume across modes."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import paddle
import pytest
from conftest import launch_pretrain

from paddle_lm.config import PRESETS, DataConfig, TrainConfig, apply_preset
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.training.rowwise import RowwiseSoftmax, merge_rows, touched_rows
from paddle_lm.training.trainer import train


def test_touched_rows_hold_scored_targets_samples_and_zero():
    batch = {"fw_targets": np.array([[5, 7], [9, 3]]), "fw_mask": np.array([[1, 1], [0, 1]]),
             "bw_targets": np.array([[2, 2], [11, 4]]), "bw_mask": np.array([[1, 0], [1, 1]])}
    rows = touched_rows(batch, np.array([7, 20, 20]))
    assert rows.tolist() == [0, 2, 3, 4, 5, 7, 11, 20]  # 9 is masked out (its target reads row 0)


def test_merge_rows_sums_duplicates_in_a_fixed_order():
    rng = np.random.default_rng(0)
    groups = [(np.array([1, 4, 6]), rng.normal(size=(3, 2))), (np.array([0, 4]), rng.normal(size=(2, 2))),
              (np.array([6, 9]), rng.normal(size=(2, 2)))]
    ids, grad = merge_rows([(paddle.to_tensor(i), paddle.to_tensor(g, dtype="float32")) for i, g in groups])
    want = np.zeros((10, 2))
    for i, g in groups:
        want[i] += g
    assert ids.numpy().tolist() == [0, 1, 4, 6, 9]
    np.testing.assert_allclose(grad.numpy(), want[[0, 1, 4, 6, 9]], rtol=1e-6)


@pytest.mark.parametrize("class_axis", [0, 1])
def test_step_is_paddles_adagrad_on_the_touched_rows(class_axis):
    """A gradient that is zero outside the touched rows: the row-wise update equals Paddle's dense Adagrad on it,
    for every row (the untouched ones included), over several steps."""
    rng = np.random.default_rng(1)
    V, P = 30, 4
    shape = [P, V] if class_axis == 1 else [V, P]
    w0, b0 = rng.normal(size=shape).astype(np.float32), rng.normal(size=V).astype(np.float32)
    dense_w, dense_b = (paddle.create_parameter(list(a.shape), "float32") for a in (w0, b0))
    row_w, row_b = (paddle.create_parameter(list(a.shape), "float32") for a in (w0, b0))
    for p, a in ((dense_w, w0), (dense_b, b0), (row_w, w0), (row_b, b0)):
        p.set_value(a)
    opt = paddle.optimizer.Adagrad(0.3, parameters=[dense_w, dense_b], initial_accumulator_value=1.0, epsilon=1e-6)
    rows = RowwiseSoftmax(row_w, row_b, class_axis, initial_accumulator=1.0, epsilon=1e-6)
    for _ in range(3):
        ids = np.unique(rng.integers(0, V, 8))
        g = rng.normal(size=(len(ids), P + 1)).astype(np.float32)  # [R, P + 1]
        gw, gb = np.zeros(shape, np.float32), np.zeros(V, np.float32)
        if class_axis == 1:
            gw[:, ids] = g[:, :P].T
        else:
            gw[ids] = g[:, :P]
        gb[ids] = g[:, P]
        dense_w.grad, dense_b.grad = None, None
        (dense_w * paddle.to_tensor(gw)).sum().backward()
        (dense_b * paddle.to_tensor(gb)).sum().backward()
        opt.step()
        opt.clear_grad()
        rows.ids, rows.grad = paddle.to_tensor(ids), paddle.to_tensor(g)
        rows.step(0.3)
    np.testing.assert_allclose(row_w.numpy(), dense_w.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(row_b.numpy(), dense_b.numpy(), rtol=0, atol=1e-6)
    state = opt.state_dict()
    for dense, row in ((dense_w, row_w), (dense_b, row_b)):  # the same accumulators, under Paddle's key names
        np.testing.assert_allclose(rows.state_dict()[f"{row.name}_moment_0"].numpy(),
                                   state[f"{dense.name}_moment_0"].numpy(), rtol=1e-6)


def _train(corpus, save_dir, mode, preset="elmo-tiny", steps=4, **extra):
    model = apply_preset(PRESETS[preset]["model"], preset)
    if model.model == "lstm":
        model = dataclasses.replace(model, tie_weights=False)
    train(DataConfig(train_data_path=corpus["train"], vocab_file=corpus["vocab"]), model,
          TrainConfig(save_dir=save_dir, batch_size=4, unroll_steps=5, max_steps=steps, save_steps=2,
                      logging_steps=1, n_negative_samples=16, softmax_update=mode, visualdl=False, device="cpu",
                      **extra), progress=False)
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _final_params(save_dir):
    prefix = os.path.join(save_dir, "final")
    return ckpt.load_params(prefix, ckpt.read_sidecar(prefix))


@pytest.mark.parametrize("preset", ["elmo-tiny", "lstm-tiny"])
def test_rows_train_like_dense(preset, tiny_corpus, tmp_path):
    """Same losses, gradient norms and weights, with gradient accumulation (the rows of two micro-batches
    merge) and clipping that bites."""
    runs = {m: _train(tiny_corpus, str(tmp_path / m), m, preset, gradient_accumulation_steps=2, max_grad_norm=0.3)
            for m in ("dense", "rows")}
    for a, b in zip(runs["dense"], runs["rows"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["grad_norm"] == pytest.approx(b["grad_norm"],
                                                                                                   rel=1e-5)
    assert max(r["grad_norm"] for r in runs["rows"]) > 0.3  # clipping acted
    dense, rows = _final_params(str(tmp_path / "dense")), _final_params(str(tmp_path / "rows"))
    assert dense.keys() == rows.keys()
    for k in dense:
        np.testing.assert_allclose(rows[k], dense[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_resume_across_modes_is_exact(tiny_corpus, tmp_path):
    """A dense run's checkpoint resumed row-wise (and the reverse) continues as the uninterrupted run."""
    straight = _train(tiny_corpus, str(tmp_path / "straight"), "rows")
    for first, second in (("dense", "rows"), ("rows", "dense")):
        half = str(tmp_path / f"{first}-{second}")
        _train(tiny_corpus, half, first, steps=2)
        resumed = _train(tiny_corpus, half, second, init_from_ckpt="auto")
        assert [r["loss"] for r in resumed[-2:]] == pytest.approx([r["loss"] for r in straight[2:]], rel=1e-5)


def test_two_ranks_rows_equal_dense(tiny_corpus, tmp_path):
    """Row gradients merged over ranks (different rows on each) and averaged like DataParallel's dense ones."""
    losses = {}
    for mode in ("dense", "rows"):
        save = str(tmp_path / mode)
        r = launch_pretrain(["--preset", "elmo-tiny", "--train_data_path", tiny_corpus["train"], "--vocab_file",
                             tiny_corpus["vocab"], "--batch_size", "4", "--unroll_steps", "5", "--max_steps", "3",
                             "--n_negative_samples", "16", "--softmax_update", mode, "--logging_steps", "1",
                             "--device", "cpu", "--save_dir", save, "--no-visualdl"], str(tmp_path / f"log-{mode}"))
        assert r.returncode == 0, r.stdout + r.stderr
        with open(os.path.join(save, "metrics.jsonl")) as f:
            losses[mode] = [(m["loss"], m["grad_norm"]) for m in map(json.loads, f)]
    assert len(losses["rows"]) == 3
    assert np.allclose(losses["rows"], losses["dense"], rtol=1e-5), losses
