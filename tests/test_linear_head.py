"""The linear head (--classifier linear) and the start-state probe (bench/probe_start_state.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import ROOT, run_script

from paddle_lm.config import FinetuneConfig
from paddle_lm.errors import UserError


def test_linear_head_picks_c_on_dev_and_learns(polarity, vector_files, elmo_ckpt, monkeypatch):
    """--classifier linear: the separable toy task is learned; C comes from the grid, chosen per fold on that
    fold's dev split (never seeing the test fold); the report and --compare specs name both heads; ELMo's
    layers are fed side by side."""
    from paddle_lm.downstream import linear
    from paddle_lm.downstream.finetune import finetune, load_polarity, make_splits

    seen_test = []
    real = linear.fit_linear

    def spy(x, labels, fit_idx, dev_idx, grid=linear.C_GRID):
        seen_test.append(set(fit_idx.tolist()) | set(dev_idx.tolist()))
        return real(x, labels, fit_idx, dev_idx, grid)

    monkeypatch.setattr("paddle_lm.downstream.finetune.fit_linear", spy)
    cfg = FinetuneConfig(data_dir=polarity, encoder="word2vec", pretrained_word2vec_file=vector_files["text"],
                         folds=3, classifier="linear",
                         compare=[f"w2v:file={vector_files['text']},classifier=linear",
                                  f"w2v:file={vector_files['text']},classifier=mlp,lr=0.01,hidden_size=16",
                                  f"elmo:ckpt={elmo_ckpt},classifier=linear"])
    report = finetune(cfg, progress=False)
    lin, mlp, elmo = report["results"]
    assert lin["name"] == "w2v:w2v-linear" and mlp["name"] == "w2v:w2v" and elmo["name"] == "elmo-mix-linear"
    assert lin["mean"] > 0.9 and len(lin["best_c"]) == 3 and set(lin["best_c"]) <= set(linear.C_GRID)
    assert "best_epochs" in mlp and "best_c" not in mlp
    _, labels, _ = load_polarity(polarity)
    tests = [test for _, test in make_splits(labels, 3, 0.1, cfg.seed)] * 2  # the two linear encoders
    assert len(seen_test) == len(tests)
    for used, test in zip(seen_test, tests):
        assert not used & set(test.tolist())  # the choice of C never sees the test fold
    from paddle_lm.downstream.report import format_report, report_json

    text = format_report(report)
    assert "classifier linear: " in text and "classifier mlp: " in text and "L2 logistic regression" in text
    assert report_json(report)["encoders"][0]["best_c"] == lin["best_c"]


def test_linear_head_sees_every_layer_and_refuses_fine_tuning(polarity, elmo_ckpt):
    from paddle_lm.downstream.finetune import FrozenFeatures

    pooled = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # [N, L, D]
    assert FrozenFeatures(pooled).vectors().tolist() == pooled.reshape(2, 12).tolist()
    with pytest.raises(UserError, match="--classifier linear fits on frozen features"):
        from paddle_lm.config import validate_finetune

        validate_finetune(FinetuneConfig(data_dir=polarity, init_from_ckpt=elmo_ckpt, classifier="linear",
                                         trainable=True))


def test_linear_head_choice_is_the_dev_loss_minimum():
    """fit_linear keeps the C with the lowest dev log-loss: a strongly regularized fit wins on noisy features."""
    from sklearn.metrics import log_loss

    from paddle_lm.downstream.linear import fit_linear

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 50)) + 0.3 * y[:, None] * (np.arange(50) < 3)  # 3 weak signal columns, 47 noise
    fit_idx, dev_idx = np.arange(150), np.arange(150, 200)
    r = fit_linear(x, y, fit_idx, dev_idx, grid=(0.001, 0.01, 1.0, 100.0))
    losses = {}
    for c in (0.001, 0.01, 1.0, 100.0):
        losses[c] = log_loss(y[dev_idx], fit_linear(x, y, fit_idx, dev_idx, grid=(c,))["model"].predict_proba(
            x[dev_idx]))
    assert r["c"] == min(losses, key=losses.get) and abs(r["dev_loss"] - min(losses.values())) < 1e-9


def test_start_state_probe_script(polarity, elmo_ckpt, tmp_path):
    """bench/probe_start_state.py: zeros, the checkpoint's mean carried state and two warm-up starts, each scored
    with a paired test against zeros; the starts really differ (the tiny model's states are not zero)."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import probe_start_state as probe

    emb = probe.StartedEmbedder(elmo_ckpt, None)
    text = str(tmp_path / "warmup.txt")
    with open(text, "w") as f:
        f.write("the movie was good .\nit was dull .\nnever read .\n")
    starts = {how: probe.start_state(emb, how, 2, text) for how in probe.STARTS}
    assert starts["zeros"] is None
    for how in ("mean", "warmup", "text"):
        assert len(starts[how]) == 8 and all(s.shape[0] == 1 for s in starts[how])
        assert max(float(np.abs(s).max()) for s in starts[how]) > 0
    sentence = [["good", "movie", "."]]
    plain = emb.encode(sentence)[0]
    emb.start = starts["warmup"]
    warm = emb.encode(sentence)[0]
    assert warm.shape == plain.shape and not np.allclose(warm[1:], plain[1:])
    np.testing.assert_allclose(warm[0], plain[0], rtol=1e-5, atol=1e-6)  # the char-CNN layer has no state
    padded = emb.encode(sentence + [["a", "much", "longer", "sentence", "than", "that", "."]])[0]
    np.testing.assert_allclose(padded, warm, rtol=1e-4, atol=1e-5)  # padding-invariant from a fixed start
    r = run_script(["bench/probe_start_state.py", "--data_dir", polarity, "--folds", "2", "--ckpt",
                    f"tiny={elmo_ckpt}", "--warmup_text", text, "--per_layer"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [row["start"] for row in rows] == ["zeros", "mean", "warmup", "text"]
    assert all(0 <= row["mcnemar_p"] <= 1 for row in rows[1:])
