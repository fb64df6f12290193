"""GPT-2 decoding with a preallocated key/value cache, over paddlenlp's ``GPTForCausalLM`` weights.

paddlenlp's own cache (``use_cache=True``) grows by concatenation: every new token copies every layer's keys and
values so far, so a step costs more the longer the text (at 512 tokens, GPT-2 small moves ~37 MB per token that
way). Here the keys and values of each layer live in one buffer sized for the whole generation and each step
writes only its own position; the query, key and value projections are one matmul (their weights concatenated
once per generation), and only the last position's logits are computed. The arithmetic is paddlenlp's GPT
(pre-LayerNorm blocks, the model's own LayerNorms and activation, logits tied to the word embeddings), in eval
mode; `tests/test_generation.py` checks the logits against paddlenlp's forward pass.

N rows, t new tokens, L tokens cached before them, T the buffer's length, H heads of size D, E = H * D.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F


class KVCache:
    """Every layer's keys and values ``[N, H, T, D]``, positions ``0..length-1`` filled; the fused q/k/v weights."""

    def __init__(self, net, rows: int, max_len: int):
        gpt = net.gpt
        self.heads = int(net.config.num_attention_heads)
        self.head_dim = int(net.config.hidden_size) // self.heads
        self.max_len, self.length = max_len, 0
        dtype = gpt.embeddings.word_embeddings.weight.dtype
        shape = [rows, self.heads, max_len, self.head_dim]
        self.keys = [paddle.zeros(shape, dtype) for _ in gpt.decoder.layers]  # each [N, H, T, D]
        self.values = [paddle.zeros(shape, dtype) for _ in gpt.decoder.layers]
        self.qkv = []  # per layer: ([E, 3E] weight, [3E] bias)
        for layer in gpt.decoder.layers:
            a = layer.self_attn
            self.qkv.append((paddle.concat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight], axis=1),
                             paddle.concat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])))


def _causal_mask(start: int, t: int, dtype) -> paddle.Tensor | None:
    """``[t, start + t]``: 0 where query ``start + i`` may see the key, -inf after it; None for one token."""
    if t == 1:
        return None
    rows = paddle.arange(start, start + t).unsqueeze(1)  # [t, 1]
    cols = paddle.arange(start + t).unsqueeze(0)  # [1, start+t]
    return paddle.where(cols <= rows, 0.0, float("-inf")).astype(dtype)  # [t, start+t]


def _attend(q: paddle.Tensor, keys: paddle.Tensor, values: paddle.Tensor, mask: paddle.Tensor | None) -> paddle.Tensor:
    """``q [N, H, t, D]`` over cached ``keys`` / ``values [N, H, start + t, D]`` under `_causal_mask`.
    Returns ``[N, H, t, D]``."""
    scores = paddle.matmul(q, keys, transpose_y=True) * (1.0 / math.sqrt(q.shape[-1]))  # [N, H, t, start+t]
    if mask is not None:
        scores = scores + mask
    return paddle.matmul(F.softmax(scores, axis=-1), values)  # [N, H, t, D]


def decode_step(net, input_ids: paddle.Tensor, cache: KVCache) -> paddle.Tensor:
    """Next-token logits ``[N, V]`` after ``input_ids [N, t]``, the tokens that follow the ``cache.length``
    cached ones (all of the prompt at first, then one per step); their keys and values join the cache."""
    gpt = net.gpt
    n, t = input_ids.shape
    start = cache.length
    if start + t > cache.max_len:
        raise ValueError(f"the cache holds {cache.max_len} positions; {start + t} asked for")
    positions = paddle.arange(start, start + t)  # [t]
    x = gpt.embeddings.word_embeddings(input_ids) + gpt.embeddings.position_embeddings(positions)  # [N, t, E]
    e, mask = x.shape[-1], _causal_mask(start, t, x.dtype)
    for i, layer in enumerate(gpt.decoder.layers):
        w, b = cache.qkv[i]
        qkv = F.linear(layer.norm1(x), w, b)  # [N, t, 3E]
        qkv = qkv.reshape([n, t, 3, cache.heads, cache.head_dim]).transpose([2, 0, 3, 1, 4])  # [3, N, H, t, D]
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [N, H, t, D]
        cache.keys[i][:, :, start:start + t] = k
        cache.values[i][:, :, start:start + t] = v
        ctx = _attend(q, cache.keys[i][:, :, :start + t], cache.values[i][:, :, :start + t], mask)  # [N,H,t,D]
        ctx = ctx.transpose([0, 2, 1, 3]).reshape([n, t, e])  # [N, t, E]
        x = x + layer.self_attn.out_proj(ctx)  # [N, t, E]
        x = x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))  # [N, t, E]
    cache.length = start + t
    last = gpt.decoder.norm(x[:, -1])  # [N, E]
    return paddle.matmul(last, gpt.embeddings.word_embeddings.weight, transpose_y=True)  # [N, V]
