"""Unidirectional word-level LSTM language model.

word embedding -> dropout -> nn.LSTM(num_layers, hidden_size) -> dropout -> softmax over the vocabulary,
the softmax optionally tied to the embedding. Shapes: B batch, T time steps, E embedding_dim,
H hidden_size, V vocab_size, L num_layers.

Recurrent state is a flat list of batch-first tensors ``[h_0, c_0, ..., h_{L-1}, c_{L-1}]``, each ``[B, H]``.
"""

from __future__ import annotations

import paddle
from paddle import nn

from paddle_lm.config import ModelConfig
from paddle_lm.models.layers import mean_loss
from paddle_lm.models.sampled_softmax import softmax_token_losses


class LSTMLM(nn.Layer):
    """Word LSTM LM.

    ``forward(batch, state=None) -> (outputs, loss, new_state)`` with ``batch`` holding ``token_ids``
    int64 ``[B, T]``, ``fw_targets`` int64 ``[B, T]`` (next word id) and ``fw_mask`` float ``[B, T]``
    (1 = the target counts). ``outputs`` holds ``fw_loss_sum``, ``fw_count`` and ``fw_loss`` (scalars).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the vocabulary before building LSTMLM")
        if cfg.tie_weights and cfg.embedding_dim != cfg.hidden_size:
            raise ValueError("tie_weights needs embedding_dim == hidden_size")
        self.vocab_size = cfg.vocab_size
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.tie_weights = cfg.tie_weights
        self.embedding = nn.Embedding(
            cfg.vocab_size, cfg.embedding_dim,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-0.1, 0.1)),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_dim, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout)
        with paddle.no_grad():
            h = cfg.hidden_size
            for layer in self.lstm:
                bias = paddle.zeros([4 * h])
                bias[h:2 * h] = 1.0  # forget-gate chunk
                layer.cell.bias_ih.set_value(bias)
                layer.cell.bias_hh.set_value(paddle.zeros([4 * h]))
        zero = paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))
        if cfg.tie_weights:
            self.output = None
            self.output_bias = self.create_parameter([cfg.vocab_size], attr=zero, is_bias=True)
        else:
            self.output = nn.Linear(
                cfg.hidden_size, cfg.vocab_size,
                weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-0.1, 0.1)), bias_attr=zero,
            )

    def softmax_params(self):
        """(weight ``[H, V]``, bias ``[V]``, class axis 1) of an untied softmax; None when tied (the tied weight is
        the input embedding, whose gradient is dense)."""
        return None if self.tie_weights else (self.output.weight, self.output.bias, 1)

    def initial_state(self, batch_size: int) -> list:
        """Zero state for ``batch_size`` rows: ``[h_0, c_0, ...]``, each ``[B, H]``."""
        return [paddle.zeros([batch_size, self.hidden_size]) for _ in range(2 * self.num_layers)]

    def forward(self, batch: dict, state=None):
        token_ids = batch["token_ids"]
        b, t = token_ids.shape
        if state is None:
            state = self.initial_state(b)
        h0 = paddle.stack(state[0::2], axis=0)  # [L, B, H]
        c0 = paddle.stack(state[1::2], axis=0)  # [L, B, H]
        x = self.dropout(self.embedding(token_ids))  # [B, T, E]
        out, (h_n, c_n) = self.lstm(x, (h0, c0))  # [B, T, H], 2 x [L, B, H]
        out = self.dropout(out).reshape([b * t, self.hidden_size])  # [B*T, H]
        if self.tie_weights:
            weight, bias, axis = self.embedding.weight, self.output_bias, 0  # [V, E]
        else:
            weight, bias, axis = self.output.weight, self.output.bias, 1  # [H, V]
        mask = batch["fw_mask"].reshape([-1])  # [B*T]
        targets = batch["fw_targets"].reshape([-1]).astype("int64")  # [B*T]
        losses = softmax_token_losses(out, weight, bias, targets, mask, axis, batch.get("softmax_samples"),
                                      batch.get("softmax_rows"))  # [B*T]
        loss_sum = losses.sum()
        count = mask.astype(loss_sum.dtype).sum()
        loss = mean_loss(loss_sum, count)
        new_state = []
        for h, c in zip(paddle.unbind(h_n, axis=0), paddle.unbind(c_n, axis=0)):
            new_state.extend([h, c])  # [B, H] each
        return {"fw_loss_sum": loss_sum, "fw_count": count, "fw_loss": loss}, loss, new_state
