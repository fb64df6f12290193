"""Multiply-adds per token counted from a ModelConfig, for the benchmarks' share of a GEMM peak.

Counted: the matmuls and convolutions (what the FLOPs are); not counted: elementwise work, gathers, norms and
the optimizer. A token is one position of the stream: for ELMo both directions' LSTMs and softmaxes are in it,
the shared char-CNN once. Training costs 3 forward passes' worth (forward, and backward for the inputs and the
weights), 2 FLOPs per multiply-add: `train_flops_per_token`.
"""

from __future__ import annotations

from paddle_lm.config import ModelConfig


def _lstm_layers(cfg: ModelConfig, input_size: int, hidden: int, proj: int) -> float:
    """Multiply-adds per position of `num_layers` LSTM layers (projected to `proj` when 0 < proj < hidden)."""
    proj = proj if 0 < proj < hidden else 0
    out = proj or hidden
    total, inp = 0.0, input_size
    for _ in range(cfg.num_layers):
        total += 4 * hidden * (inp + out) + hidden * proj  # gates over [input, recurrent]; the projection
        inp = out
    return total


def forward_macs(cfg: ModelConfig, negatives: int = 0, seq_len: int = 128, max_chars: int = 50,
                 encoded_share: float = 1.0) -> dict[str, float]:
    """Forward multiply-adds per token, by part. `negatives` > 0: a sampled softmax over that many classes plus
    the target; `seq_len`: the attention span of BERT / GPT-2; `max_chars`: ELMo's characters per token;
    `encoded_share`: the share of positions ELMo's token encoder runs on (1: the model's FLOPs; the distinct
    tokens per position of a batch: the FLOPs executed, since it runs once per distinct token)."""
    classes = negatives + 1 if negatives else cfg.vocab_size
    if cfg.model == "elmo":
        f = sum(n for _, n in cfg.filters)
        p = cfg.projection_dim
        return {
            "char_cnn": encoded_share * sum(w * n * cfg.char_embed_dim * (max_chars - w + 1) for w, n in cfg.filters),
            "highways": encoded_share * cfg.num_highways * f * 2 * f,
            "projection": encoded_share * f * p,
            "lstms": 2 * _lstm_layers(cfg, p, cfg.cell_size, p),
            "softmax": 2 * p * classes,
        }
    if cfg.model == "lstm":
        return {"lstms": _lstm_layers(cfg, cfg.embedding_dim, cfg.hidden_size, 0),
                "softmax": cfg.hidden_size * classes}
    d, ff = cfg.hidden_size, cfg.intermediate_size
    head = d * cfg.vocab_size + (d * d if cfg.model == "bert" else 0)  # BERT: transform + decoder of every token
    return {"projections": cfg.num_layers * 4 * d * d, "mlp": cfg.num_layers * 2 * d * ff,
            "attention": cfg.num_layers * 2 * seq_len * d, "lm_head": head}


def train_flops_per_token(cfg: ModelConfig, **kw) -> float:
    """FLOPs of one training token: 2 per multiply-add, 3 forward passes' worth."""
    return 6.0 * sum(forward_macs(cfg, **kw).values())
