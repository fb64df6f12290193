"""BERT / GPT-2 wrappers: interface, loss over labelled positions only, learning, save_pretrained round trip."""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddle_lm.config import PRESETS, apply_preset
from paddle_lm.errors import UserError
from paddle_lm.models import build_model
from paddle_lm.models.transformer_lm import IGNORE_INDEX, causal_labels

V = 60


def make(kind: str, seed: int = 0):
    paddle.seed(seed)
    cfg = apply_preset(kind, f"{kind}-tiny")
    cfg.vocab_size = V
    return cfg, build_model(cfg)


def batch_for(kind: str, seed: int = 0, b: int = 3, length: int = 12) -> dict:
    rng = np.random.default_rng(seed)
    ids = paddle.to_tensor(rng.integers(5, V, [b, length]), dtype="int64")
    if kind == "gpt2":
        return {"input_ids": ids, "labels": causal_labels(ids)}
    labels = np.full([b, length], IGNORE_INDEX)
    labels[:, [2, 7]] = rng.integers(5, V, [b, 2])
    return {"input_ids": ids, "labels": paddle.to_tensor(labels, dtype="int64"),
            "attention_mask": paddle.ones([b, length])}


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_interface_and_initial_loss(kind):
    _, model = make(kind)
    model.eval()
    outputs, loss, state = model(batch_for(kind), None)
    assert state == [] and model.initial_state(4) == []
    expected_count = 3 * 2 if kind == "bert" else 3 * 11
    assert float(outputs["fw_count"]) == expected_count
    assert abs(float(loss) - math.log(V)) < 0.5
    assert float(loss) == pytest.approx(float(outputs["fw_loss_sum"]) / expected_count, rel=1e-5)


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_loss_is_mean_over_labelled_positions(kind):
    _, model = make(kind)
    model.eval()
    batch = batch_for(kind)
    _, loss, _ = model(batch)
    logits = model.logits(batch["input_ids"], batch.get("attention_mask")).numpy()  # [B, L, V]
    labels = batch["labels"].numpy()
    keep = labels != IGNORE_INDEX
    logp = F.log_softmax(paddle.to_tensor(logits), axis=-1).numpy()
    want = -np.mean(logp[keep, labels[keep]])
    assert float(loss) == pytest.approx(want, rel=1e-4)


def test_causal_labels_shift():
    ids = paddle.to_tensor([[1, 2, 3, 4]], dtype="int64")
    assert causal_labels(ids).numpy().tolist() == [[2, 3, 4, IGNORE_INDEX]]
    assert ids.numpy().tolist() == [[1, 2, 3, 4]]  # input untouched


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_a_few_steps_reduce_loss(kind):
    _, model = make(kind)
    model.train()
    batch = batch_for(kind)
    opt = paddle.optimizer.AdamW(3e-3, parameters=model.parameters())
    first = None
    for _ in range(15):
        _, loss, _ = model(batch)
        first = first if first is not None else float(loss)
        loss.backward()
        opt.step()
        opt.clear_grad()
    assert float(loss) < 0.7 * first


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_save_pretrained_round_trip(kind, tmp_path):
    from paddle_lm.models import build_model
    from paddle_lm.models.transformer_lm import config_from_pretrained, load_pretrained_weights

    cfg, model = make(kind)
    model.eval()
    model.save_pretrained(str(tmp_path / kind))
    back = config_from_pretrained(str(tmp_path / kind), kind)
    assert back == cfg  # every architecture field survives config.json
    again = build_model(back)
    load_pretrained_weights(again, str(tmp_path / kind))
    again.eval()
    batch = batch_for(kind)
    np.testing.assert_allclose(model.logits(batch["input_ids"]).numpy(), again.logits(batch["input_ids"]).numpy(),
                               atol=1e-5)
    other = "gpt2" if kind == "bert" else "bert"
    with pytest.raises(UserError, match=f"holds a {kind} model.*--model is {other}"):
        config_from_pretrained(str(tmp_path / kind), other)


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every name lookup or connection fails; the returned list records what was tried (a hub fetch would be)."""
    import socket

    tried: list = []

    def refuse(*args, **kwargs):
        tried.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network disabled by the test")

    for name in ("getaddrinfo", "gethostbyname", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


def test_pretrained_dir_must_be_complete_and_local(tmp_path, monkeypatch, no_network):
    from paddle_lm.models.transformer_lm import config_from_pretrained, load_pretrained_weights

    monkeypatch.chdir(tmp_path)
    _, model = make("gpt2")
    for load in (lambda d: config_from_pretrained(d, "gpt2"), lambda d: load_pretrained_weights(model, d)):
        with pytest.raises(UserError, match="not a local folder"):
            load("gpt2-medium")  # a hub name: refused, never looked up
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="config.json"):
        config_from_pretrained(str(tmp_path / "empty"), "gpt2")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="'.*empty' has no weights"):
        config_from_pretrained(str(tmp_path / "empty"), "gpt2")
    model.save_pretrained(str(tmp_path / "gpt2-medium"))  # a local folder named like a hub model loads offline
    load_pretrained_weights(build_model(config_from_pretrained("gpt2-medium", "gpt2")), "gpt2-medium")
    assert no_network == []  # nothing was even looked up


def test_presets_sizes():
    from paddle_lm.models import count_parameters

    for name, approx in (("bert-base", 110e6), ("gpt2-small", 124e6)):
        cfg = apply_preset(PRESETS[name]["model"], name)
        cfg.vocab_size = 30522 if name.startswith("bert") else 50257
        n = count_parameters(build_model(cfg))
        assert abs(n - approx) / approx < 0.05, (name, n)
