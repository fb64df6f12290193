"""Bag-of-words polarity classifier: (scalar mix of layers) -> masked mean over tokens -> MLP -> 2 classes.

The training loop (``fit``) runs Adam with early stopping on a dev set and restores the best epoch's
weights. Inputs come from a *feature source* with this small interface (see downstream/finetune.py):

- ``num_layers``, ``dim``: how many ``[B, T, D]`` layers it returns, and D;
- ``batch(idx, training) -> (layers, mask)``: L tensors ``[B, T, D]`` and ``mask [B, T]`` (or None when
  every position counts, e.g. for features pooled in advance with T = 1);
- ``parameters()``, ``state()``, ``restore(state)``: its trainable weights (none for frozen features).
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn
from tqdm import tqdm


def masked_mean(x: paddle.Tensor, mask: paddle.Tensor | None = None) -> paddle.Tensor:
    """Mean over time of ``x [B, T, D]`` counting positions where ``mask [B, T]`` is 1 -> ``[B, D]``.

    A row without any real position gives the zero vector.
    """
    if mask is None:
        return x.mean(axis=1)  # [B, D]
    m = mask.astype(x.dtype).unsqueeze(-1)  # [B, T, 1]
    return (x * m).sum(axis=1) / m.sum(axis=1).clip(min=1.0)  # [B, D]


class BowClassifier(nn.Layer):
    """Masked mean of token vectors -> dropout -> Linear -> ReLU -> dropout -> Linear -> logits ``[B, C]``.

    With ``num_layers > 1`` the layers are first combined: ``combine="mix"`` by a learned ScalarMix
    (softmax-normalized weights and a scale, no layer norm; the vector stays ``input_dim`` wide), or
    ``combine="concat"`` by concatenating them (``num_layers * input_dim`` wide). Both are linear per token, so
    combining token vectors and then averaging equals averaging each layer and then combining: frozen features
    can be pooled once, in advance.
    """

    def __init__(self, input_dim: int, hidden_size: int = 128, dropout: float = 0.3, num_layers: int = 1,
                 num_classes: int = 2, normalize: bool = True, combine: str = "mix"):
        super().__init__()
        # Own parameter names ("head_linear_0.w_0", ...): build_model names the encoder from a fresh counter too,
        # and one optimizer over both (fine-tuning) keys its state by name.
        with paddle.utils.unique_name.guard("head_"):
            if combine not in ("mix", "concat"):
                raise ValueError(f"combine must be 'mix' or 'concat', not {combine!r}")
            self.concat = combine == "concat" and num_layers > 1
            if self.concat:
                input_dim *= num_layers
            # Per-feature standardization of the sentence vector (batch statistics while training, running
            # ones after): averaged ELMo states vary little around a large common offset, which stalls the MLP.
            self.norm = nn.BatchNorm1D(input_dim) if normalize else None
            self.num_layers = num_layers
            if num_layers > 1 and not self.concat:
                from paddle_lm.downstream.embedder import ScalarMix

                self.mix = ScalarMix(num_layers, do_layer_norm=False)
            else:
                self.mix = None
            self.mlp = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(input_dim, hidden_size), nn.ReLU(),
                nn.Dropout(dropout), nn.Linear(hidden_size, num_classes),
            )

    def forward(self, layers: list, mask: paddle.Tensor | None = None) -> paddle.Tensor:
        if len(layers) != self.num_layers:
            raise ValueError(f"BowClassifier expects {self.num_layers} layers, got {len(layers)}")
        if self.concat:
            x = paddle.concat(layers, axis=-1)  # [B, T, L*D]
        else:
            x = self.mix(layers) if self.mix is not None else layers[0]  # [B, T, D]
        pooled = masked_mean(x, mask)  # [B, D]
        if self.norm is not None:
            pooled = self.norm(pooled)  # [B, D]
        return self.mlp(pooled)  # [B, C]


def _snapshot(layer: nn.Layer) -> dict:
    return {k: v.numpy().copy() for k, v in layer.state_dict().items()}


@paddle.no_grad()
def predict_logits(model: BowClassifier, features, idx: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits ``[len(idx), C]`` of the sentences `idx`, in eval mode (no dropout)."""
    model.eval()
    out = []
    for start in range(0, len(idx), batch_size):
        layers, mask = features.batch(idx[start:start + batch_size], training=False)
        out.append(model(layers, mask).numpy())  # [b, C]
    return np.concatenate(out, axis=0)


def _dev_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of numpy logits ``[N, C]`` against int labels ``[N]``."""
    z = logits - logits.max(axis=1, keepdims=True)  # [N, C]
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # [N, C]
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit(model: BowClassifier, features, labels: np.ndarray, fit_idx: np.ndarray, dev_idx: np.ndarray, *,
        lr: float = 1e-3, epochs: int = 30, batch_size: int = 32, patience: int = 3, seed: int = 0,
        progress: bool = False) -> dict:
    """Train on `fit_idx` with Adam; after each epoch score `dev_idx`; stop after `patience` epochs without a
    lower dev loss and restore the weights (classifier and feature source) of the best epoch.

    Returns ``{"best_epoch", "epochs_run", "dev_loss", "dev_accuracy"}``.
    """
    rng = np.random.default_rng(seed)
    paddle.seed(seed)  # dropout
    params = list(model.parameters()) + features.parameters()
    names = [p.name for p in params]
    if len(set(names)) != len(names):  # Adam keys its moments by name: two parameters would share them
        clash = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"classifier and encoder parameters share names {clash[:5]}; build each under its own "
                         "paddle.utils.unique_name.guard prefix")
    opt = paddle.optimizer.Adam(learning_rate=lr, parameters=params)
    best = {"dev_loss": math.inf, "best_epoch": 0, "dev_accuracy": 0.0}
    best_state, bad, epoch = None, 0, 0
    steps = math.ceil(len(fit_idx) / batch_size)
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(fit_idx)
        for start in tqdm(range(0, len(order), batch_size), total=steps, desc=f"epoch {epoch}", unit="batch",
                          leave=False, disable=not progress, dynamic_ncols=True):
            idx = order[start:start + batch_size]
            layers, mask = features.batch(idx, training=True)
            logits = model(layers, mask)  # [B, C]
            loss = F.cross_entropy(logits, paddle.to_tensor(labels[idx].astype("int64")))
            loss.backward()
            opt.step()
            opt.clear_grad()
        dev_logits = predict_logits(model, features, dev_idx)  # [n_dev, C]
        dev_loss = _dev_loss(dev_logits, labels[dev_idx])
        if dev_loss < best["dev_loss"] - 1e-6:
            acc = float((dev_logits.argmax(axis=1) == labels[dev_idx]).mean())
            best = {"dev_loss": dev_loss, "best_epoch": epoch, "dev_accuracy": acc}
            best_state, bad = (_snapshot(model), features.state()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.set_state_dict(best_state[0])
        features.restore(best_state[1])
    return {**best, "epochs_run": epoch}
