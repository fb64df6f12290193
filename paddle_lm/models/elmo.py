"""ELMo-style bidirectional LM (bilm-tf architecture).

Char-CNN + highway token encoder -> forward and backward stacks of projected LSTMs -> one softmax shared by
both directions. Shapes: B batch, T time steps, C characters per token, P projection_dim, H cell_size,
V vocab_size, L num_layers.

Recurrent state is a flat list of batch-first tensors:
``[fw_h_0, fw_c_0, ..., fw_h_{L-1}, fw_c_{L-1}, bw_h_0, bw_c_0, ..., bw_h_{L-1}, bw_c_{L-1}]`` with
``h [B, P]`` and ``c [B, H]``.
"""

from __future__ import annotations

import paddle
from paddle import nn

from paddle_lm.config import ModelConfig
from paddle_lm.models.layers import (
    CharCNNEncoder,
    ProjectedLSTM,
    mean_loss,
    reverse_padded,
)
from paddle_lm.models.sampled_softmax import softmax_token_losses


class LSTMStack(nn.Layer):
    """``num_layers`` projected LSTMs running in one direction (the caller reverses inputs for backward).

    Each layer's input is dropped out; from the second layer on, with ``residual``, the layer's input is
    added to its output. Returns every layer's output ``[B, T, P]`` and the new flat state.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        p = cfg.projection_dim
        self.residual = cfg.residual
        self.layers = nn.LayerList([
            ProjectedLSTM(p, cfg.cell_size, proj_size=p, cell_clip=cfg.cell_clip, proj_clip=cfg.proj_clip)
            for _ in range(cfg.num_layers)
        ])
        self.dropout = nn.Dropout(cfg.dropout)

    def initial_state(self, batch_size: int) -> list:
        state = []
        for layer in self.layers:
            state.extend(layer.initial_state(batch_size))
        return state

    def forward(self, x, state: list, lengths=None, keep_state: bool = True):
        outputs, new_state = [], []
        for i, layer in enumerate(self.layers):
            out, (h, c) = layer(self.dropout(x), (state[2 * i], state[2 * i + 1]), lengths, keep_state)  # [B, T, P]
            if self.residual and i > 0:
                out = out + x  # [B, T, P]
            outputs.append(out)
            new_state.extend([h, c])
            x = out
        return outputs, new_state


class ELMo(nn.Layer):
    """bilm-tf style biLM. See the module docstring for the state layout.

    ``forward(batch, state=None) -> (outputs, loss, new_state)`` where ``batch`` holds ``char_ids`` int
    ``[B, T, C]``, ``fw_targets`` / ``bw_targets`` int64 ``[B, T]`` (next / previous word id),
    ``fw_mask`` / ``bw_mask`` float ``[B, T]`` (1 = the target counts), and optionally ``token_mask``
    ``[B, T]`` (1 = real token, right-padded sentences; see ``encode``), ``char_unique`` int ``[U, C]`` with
    ``char_inverse`` int64 ``[B*T]`` (the batch's distinct tokens, ``data.chars.distinct_rows``) and ``softmax_samples`` int64 ``[K]``
    (train with a sampled softmax over these negatives; see models/sampled_softmax.py). The loss is the mean of the two
    directions' token-weighted mean cross-entropies; ``outputs`` holds ``fw_loss_sum``, ``fw_count``,
    ``bw_loss_sum``, ``bw_count``, ``fw_loss``, ``bw_loss`` (scalars).

    ``with_softmax=False`` builds the encoder alone (``encode`` only; no ``[P, V]`` softmax in memory): what
    the embedder, the export and fine-tuning need.
    """

    def __init__(self, cfg: ModelConfig, with_softmax: bool = True):
        super().__init__()
        if cfg.vocab_size <= 0 and with_softmax:
            raise ValueError("ModelConfig.vocab_size must be set (from the vocabulary) before building ELMo")
        self.vocab_size = cfg.vocab_size
        self.num_layers = cfg.num_layers
        self.token_encoder = CharCNNEncoder(
            cfg.char_embed_dim, cfg.filters, cfg.num_highways, cfg.projection_dim, cfg.cnn_activation
        )
        self.forward_lstm = LSTMStack(cfg)
        self.backward_lstm = LSTMStack(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.softmax = None if not with_softmax else nn.Linear(
            cfg.projection_dim, cfg.vocab_size,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.XavierUniform()),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)),
        )

    def softmax_params(self):
        """(weight ``[P, V]``, bias ``[V]``, class axis 1) of the softmax, or None without one."""
        return None if self.softmax is None else (self.softmax.weight, self.softmax.bias, 1)

    def initial_state(self, batch_size: int) -> list:
        """Zero state for ``batch_size`` rows (flat list, forward direction first)."""
        return self.forward_lstm.initial_state(batch_size) + self.backward_lstm.initial_state(batch_size)

    def encode(self, char_ids, mask=None, state=None, distinct=None, keep_state: bool = True, tokens=None):
        """Contextual representations of every layer.

        ``char_ids`` int ``[B, T, C]``; ``mask`` ``[B, T]`` (1 = real token, sentences right-padded) or
        None. Returns ``(layers, new_state)``: ``layers[0]`` is the token encoding duplicated for both
        directions, ``concat(x, x)``, and ``layers[k]`` is ``concat(fw_out_k, bw_out_k)``; each
        ``[B, T, 2P]``. Without ``mask`` the backward direction reads the whole window right to left; with
        it, each sentence is reversed within its own length, so padding never reaches real tokens (values
        at padded positions are unspecified), and each row's ``new_state`` is the state at its last real token
        (forward: the sentence's last token; backward: its first), as if each row had run alone. ``distinct``:
        ``(unique [U, C], inverse [B*T])`` of these ``char_ids`` (``data.chars.distinct_rows``), to run the
        char-CNN once per distinct token (same values, less work); see ``CharCNNEncoder.forward``.
        ``keep_state=False``: the caller discards the new state (a zero-start embedder), so the LSTMs skip the
        per-row length bookkeeping (same layers, ~15% less LSTM time) and ``new_state`` is None. Rows sorted
        longest first (the embedder's batches) need no bookkeeping either way: each row leaves the LSTMs'
        products once it ends (``ProjectedLSTM``, eager). ``tokens``
        ``[B, T, P]``: the char-CNN's encodings of ``char_ids``, already computed (the embedder's per-call cache);
        the char-CNN is then not run.
        """
        n = 2 * self.num_layers
        if state is None:
            state = self.initial_state(char_ids.shape[0])
        elif len(state) != 2 * n:
            raise ValueError(f"ELMo state must be a list of {2 * n} tensors, got {len(state)}")
        lengths = None if mask is None else mask.astype("float32").sum(axis=1).round().astype("int64")  # [B]
        x = self.token_encoder(char_ids, distinct) if tokens is None else tokens  # [B, T, P]
        # padding sits after each row's last real step in both directions
        fw_outputs, fw_state = self.forward_lstm(x, state[:n], lengths, keep_state)  # L x [B, T, P]
        bw_outputs, bw_state = self.backward_lstm(reverse_padded(x, lengths), state[n:], lengths, keep_state)
        layers = [paddle.concat([x, x], axis=-1)]  # [B, T, 2P]
        for fw, bw in zip(fw_outputs, bw_outputs):
            layers.append(paddle.concat([fw, reverse_padded(bw, lengths)], axis=-1))  # [B, T, 2P]
        return layers, (fw_state + bw_state if keep_state else None)

    def forward(self, batch: dict, state=None):
        if self.softmax is None:
            raise ValueError("this ELMo was built with_softmax=False (an encoder): it has no LM loss")
        distinct = (batch["char_unique"], batch["char_inverse"]) if "char_unique" in batch else None
        layers, new_state = self.encode(batch["char_ids"], batch.get("token_mask"), state, distinct)
        b, t = batch["fw_targets"].shape
        fw, bw = paddle.split(layers[-1], 2, axis=-1)  # 2 x [B, T, P]
        hidden = self.dropout(paddle.concat([fw, bw], axis=0)).reshape([2 * b * t, -1])  # [2B*T, P]
        targets = paddle.concat([batch["fw_targets"], batch["bw_targets"]], axis=0).reshape([-1])  # [2B*T]
        mask = paddle.concat([batch["fw_mask"], batch["bw_mask"]], axis=0).reshape([-1])  # [2B*T]
        losses = softmax_token_losses(
            hidden, self.softmax.weight, self.softmax.bias, targets.astype("int64"), mask, class_axis=1,
            samples=batch.get("softmax_samples"), rows=batch.get("softmax_rows"),
        ).reshape([2, b * t])  # [2, B*T]
        sums = losses.sum(axis=1)  # [2]
        counts = mask.astype(sums.dtype).reshape([2, b * t]).sum(axis=1)  # [2]
        fw_loss, bw_loss = mean_loss(sums[0], counts[0]), mean_loss(sums[1], counts[1])
        outputs = {
            "fw_loss_sum": sums[0], "fw_count": counts[0], "bw_loss_sum": sums[1], "bw_count": counts[1],
            "fw_loss": fw_loss, "bw_loss": bw_loss,
        }
        return outputs, 0.5 * (fw_loss + bw_loss), new_state
