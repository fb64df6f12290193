"""ELMo written the straightforward way in Paddle — the reference for bench/bench_vs_plain.py, built from the
architecture of PaddleNLP's ELMo example (not from its code): a char-CNN run over every token occurrence
(biased convolutions in Paddle's default channels-first layout, `paddle.max` over positions), highways, a projection, one `paddle.nn.LSTM` stack per
direction and a full softmax through an `nn.Linear`. It has paddle-lm's model interface, so the same trainer,
data and optimizer drive it; only the network differs.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from paddle_lm.models.layers import NUM_CHAR_IDS


class PlainELMo(nn.Layer):
    """``forward(batch, state) -> (outputs, loss, new_state)`` like paddle_lm.models.ELMo (full softmax only);
    ``state`` is ``[fw_h, fw_c, bw_h, bw_c]``, each ``[L, B, H]``. `pooling`: ``"max"`` (`paddle.max`, the plain
    way) or ``"pool"`` (`F.max_pool1d`, the same values; Paddle 3.3.1's CPU backward of `paddle.max` is slow)."""

    def __init__(self, cfg, pooling: str = "max"):
        super().__init__()
        self.pooling = pooling
        e, p, h = cfg.char_embed_dim, cfg.projection_dim, cfg.cell_size
        self.num_layers, self.hidden = cfg.num_layers, h
        self.char_embedding = nn.Embedding(NUM_CHAR_IDS, e)
        self.convs = nn.LayerList([nn.Conv1D(e, n, w) for w, n in cfg.filters])  # Paddle's default layout, NCL
        f = sum(n for _, n in cfg.filters)
        self.highways = nn.LayerList([nn.Linear(f, 2 * f) for _ in range(cfg.num_highways)])
        self.projection = nn.Linear(f, p)
        self.forward_lstm = nn.LSTM(p, h, cfg.num_layers, dropout=cfg.dropout)
        self.backward_lstm = nn.LSTM(p, h, cfg.num_layers, dropout=cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.softmax = nn.Linear(h, cfg.vocab_size)

    def encode_tokens(self, char_ids):
        b, t, c = char_ids.shape
        x = self.char_embedding(char_ids.reshape([b * t, c])).transpose([0, 2, 1])  # [B*T, E, C]
        x = paddle.concat([self.pool(F.relu(conv(x))) for conv in self.convs], axis=-1)  # [B*T, F]
        for layer in self.highways:
            nonlinear, gate = paddle.chunk(layer(x), 2, axis=-1)  # 2 x [B*T, F]
            gate = F.sigmoid(gate)
            x = gate * x + (1 - gate) * F.relu(nonlinear)  # [B*T, F]
        return self.projection(x).reshape([b, t, -1])  # [B, T, P]

    def pool(self, x):
        """Max over the positions of ``[B*T, n, L]`` -> ``[B*T, n]``."""
        if self.pooling == "max":
            return paddle.max(x, axis=-1)
        return F.max_pool1d(x, x.shape[-1]).squeeze(-1)

    def forward(self, batch: dict, state=None):
        x = self.encode_tokens(batch["char_ids"])  # [B, T, P]
        b = x.shape[0]
        if state is None:
            state = [paddle.zeros([self.num_layers, b, self.hidden]) for _ in range(4)]
        fw, (fh, fc) = self.forward_lstm(x, (state[0], state[1]))  # [B, T, H]
        bw, (bh, bc) = self.backward_lstm(paddle.flip(x, axis=[1]), (state[2], state[3]))  # [B, T, H]
        bw = paddle.flip(bw, axis=[1])  # [B, T, H]
        out, sums, counts = {}, [], []
        for name, hidden in (("fw", fw), ("bw", bw)):
            logits = self.softmax(self.dropout(hidden))  # [B, T, V]
            mask = batch[f"{name}_mask"].astype("float32")  # [B, T]
            targets = paddle.where(mask > 0, batch[f"{name}_targets"], paddle.zeros_like(batch[f"{name}_targets"]))
            ce = F.cross_entropy(logits, targets.astype("int64").unsqueeze(-1), reduction="none").squeeze(-1)
            sums.append((ce * mask).sum())
            counts.append(mask.sum())
            out[f"{name}_loss_sum"], out[f"{name}_count"] = sums[-1], counts[-1]
            out[f"{name}_loss"] = sums[-1] / paddle.clip(counts[-1], min=1.0)
        loss = 0.5 * (out["fw_loss"] + out["bw_loss"])
        return out, loss, [fh, fc, bh, bc]
